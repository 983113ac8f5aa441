#include "common/hdf5_lock.h"

namespace odyssey {

std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace odyssey
