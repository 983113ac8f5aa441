// The exit codes of Odyssey's executables (documented in README.md).
#pragma once

namespace odyssey {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;       // bad command line
inline constexpr int kExitUserError = 2;   // bad config, data or checkpoint (message names it)
inline constexpr int kExitRuntime = 3;     // a failure during training on one rank (job aborted)
inline constexpr int kExitInternal = 4;    // an unexpected library error (a bug: please report)
inline constexpr int kExitPreempted = 75;  // stopped by SIGTERM/SIGUSR1/SIGINT after a checkpoint
                                           // (or during setup, nothing trained): requeue and
                                           // resume with train.resume=auto

}  // namespace odyssey
