// Watchdog: ends the job with a message naming the rank(s) that did not arrive when a collective
// does not complete in time, instead of a silent hang.
//
// Every rank's watchdog thread sends a small UDP heartbeat (its last entered and completed
// collective sequence numbers) to rank 0 twice a second; rank 0 answers with a summary of the
// ranks that lag behind or have gone quiet. UDP, not MPI: the side channel must keep working
// when MPI is wedged in a collective, and a stopped or dead rank is recognised by its silence.
// When this rank's current collective has run longer than the timeout, the lowest rank still
// waiting prints the verdict (which ranks never arrived, which fell silent) and every waiting
// rank exits with code 3; mpirun then ends the rest.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace odyssey {

// What rank 0 knows about one rank: the newest collective it entered and the newest it
// completed (sequence numbers from 1), and how long ago it was last heard from.
struct PeerState {
  int rank = 0;
  int64_t entered = 0;
  int64_t done = 0;
  double age_s = 0;
};

// Rank 0's answer to a heartbeat: the ranks behind the furthest one or silent for dead_after_s
// (silent first, then the furthest behind), at most `limit`; `more` counts those left out.
struct HeartbeatSummary {
  int size = 0;
  int64_t max_entered = 0;
  std::vector<PeerState> laggards;
  int64_t more = 0;
};
HeartbeatSummary summarise(const std::vector<PeerState>& all, double dead_after_s, size_t limit);

// A collective on this rank that exceeded its timeout.
struct Stall {
  int rank = 0;
  int64_t seq = 0;
  std::string op;
  int64_t bytes = 0;
  double waited_s = 0;
  double timeout_s = 0;
};

// The ranks that have not arrived at the stalled collective: silent ones, then those behind.
// With a stale summary (no answer from rank 0 for summary_age_s), rank 0 itself is the suspect.
std::vector<PeerState> missing_ranks(const Stall& stall, const HeartbeatSummary& summary,
                                     double summary_age_s, double dead_after_s);
// The full verdict (several lines): the collective, the wait, and each missing rank with its host
// and what it was last seen doing.
std::string describe_stall(const Stall& stall, const std::vector<PeerState>& missing,
                           const std::vector<std::string>& hosts, double summary_age_s,
                           double dead_after_s);

class Watchdog {
 public:
  // Collective over comm (all ranks construct it together): exchanges host names and rank 0's
  // heartbeat address, then starts the watchdog thread.
  Watchdog(MPI_Comm comm, double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // The communication thread brackets every collective with these.
  void enter(int64_t seq, const char* op, int64_t bytes);
  void leave(int64_t seq);
  void set_timeout(double seconds) { timeout_s_.store(seconds); }

  static constexpr double kBeatInterval = 0.5;  // seconds between heartbeats
  static constexpr double kDeadAfter = 3.0;     // silent this long: stopped, dead or unreachable

 private:
  void loop();
  void check_stall(double now, double summary_age);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<double> timeout_s_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace odyssey
