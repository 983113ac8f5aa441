// `trainer simulate`: predicted step time, throughput and scaling efficiency of data-parallel
// training on N GPUs (or CPU ranks) from the alpha-beta scaling model (src/scaling/), its
// calibration on measured MPI_Allreduce timings, its validation against a measured sweep, and the
// published anchors.
#pragma once

#include <string>
#include <vector>

namespace odyssey {

// trainer simulate [options] (see trainer --help). Returns the exit code.
int simulate_command(const std::vector<std::string>& args);

}  // namespace odyssey
