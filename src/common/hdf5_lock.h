// One process-wide lock around HDF5 calls: Debian's libhdf5 is not built thread-safe, and the
// loader's reader threads and the checkpoint writer share it.
#pragma once

#include <mutex>

namespace odyssey {

std::mutex& hdf5_mutex();

}  // namespace odyssey
