// parallel_tasks(n, work_per_item, f): f(begin, end) over [0, n) on LibTorch's intra-op threads,
// in tasks of at least ~32k scalar operations (work_per_item each; smaller tasks cost more to
// hand out than they compute). The wrappers of Odyssey's own CPU kernels (models/*.cpp) share it.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace odyssey {

template <class F>
void parallel_tasks(int64_t n, int64_t work_per_item, const F& f) {
  at::parallel_for(0, n, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_item)), f);
}

}  // namespace odyssey
