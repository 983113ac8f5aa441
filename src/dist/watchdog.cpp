#include "dist/watchdog.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <sstream>

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/log.h"
#include "common/text.h"

namespace odyssey {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string mb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  return buf;
}

// Wire formats (host byte order: one job runs one architecture).
constexpr uint32_t kBeatMagic = 0x4f445942;   // "ODYB"
constexpr uint32_t kSummaryMagic = 0x4f445953;  // "ODYS"
constexpr size_t kLaggardLimit = 32;

struct Beat {
  uint32_t magic;
  int32_t rank;
  uint32_t job;  // rank 0's random job id: a beat of another job on the same port is ignored
  uint32_t pad;
  int64_t entered, done;
};

struct WirePeer {
  int32_t rank;
  float age_s;
  int64_t entered, done;
};

struct SummaryHeader {
  uint32_t magic;
  int32_t size, count;
  uint32_t job;
  int64_t max_entered, more;
};

std::vector<char> encode(const HeartbeatSummary& s, uint32_t job) {
  SummaryHeader h{kSummaryMagic, s.size, static_cast<int32_t>(s.laggards.size()), job,
                  s.max_entered, s.more};
  std::vector<char> out(sizeof h + s.laggards.size() * sizeof(WirePeer));
  std::memcpy(out.data(), &h, sizeof h);
  for (size_t i = 0; i < s.laggards.size(); ++i) {
    const auto& p = s.laggards[i];
    WirePeer w{p.rank, static_cast<float>(p.age_s), p.entered, p.done};
    std::memcpy(out.data() + sizeof h + i * sizeof w, &w, sizeof w);
  }
  return out;
}

bool decode(const char* data, size_t n, uint32_t job, HeartbeatSummary& s) {
  SummaryHeader h;
  if (n < sizeof h) return false;
  std::memcpy(&h, data, sizeof h);
  if (h.magic != kSummaryMagic || h.job != job || h.count < 0 || n != sizeof h + h.count * sizeof(WirePeer))
    return false;
  s.size = h.size;
  s.max_entered = h.max_entered;
  s.more = h.more;
  s.laggards.resize(h.count);
  for (int i = 0; i < h.count; ++i) {
    WirePeer w;
    std::memcpy(&w, data + sizeof h + i * sizeof w, sizeof w);
    s.laggards[i] = {w.rank, w.entered, w.done, w.age_s};
  }
  return true;
}

// IPv4 addresses of this host's interfaces that are up, loopback last.
std::vector<std::string> local_addresses() {
  std::vector<std::string> out, loop;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {"127.0.0.1"};
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP)) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    ((a->ifa_flags & IFF_LOOPBACK) ? loop : out).push_back(buf);
  }
  freeifaddrs(list);
  out.insert(out.end(), loop.begin(), loop.end());
  return out;
}

}  // namespace

HeartbeatSummary summarise(const std::vector<PeerState>& all, double dead_after_s, size_t limit) {
  HeartbeatSummary s;
  s.size = static_cast<int>(all.size());
  for (const auto& p : all) s.max_entered = std::max(s.max_entered, p.entered);
  std::vector<PeerState> lag;
  for (const auto& p : all)
    if (p.age_s > dead_after_s || p.entered < s.max_entered) lag.push_back(p);
  std::sort(lag.begin(), lag.end(), [&](const PeerState& a, const PeerState& b) {
    const bool da = a.age_s > dead_after_s, db = b.age_s > dead_after_s;
    if (da != db) return da;
    if (a.entered != b.entered) return a.entered < b.entered;
    return a.rank < b.rank;
  });
  if (lag.size() > limit) {
    s.more = static_cast<int64_t>(lag.size() - limit);
    lag.resize(limit);
  }
  s.laggards = std::move(lag);
  return s;
}

std::vector<PeerState> missing_ranks(const Stall& stall, const HeartbeatSummary& summary,
                                     double summary_age_s, double dead_after_s) {
  std::vector<PeerState> out;
  if (stall.rank != 0 && summary_age_s > dead_after_s) {
    PeerState zero;
    zero.rank = 0;
    zero.age_s = summary_age_s;
    zero.entered = zero.done = -1;  // unknown
    for (const auto& p : summary.laggards)
      if (p.rank == 0) zero.entered = p.entered, zero.done = p.done;
    out.push_back(zero);
    return out;
  }
  for (const auto& p : summary.laggards)
    if (p.rank != stall.rank && (p.age_s > dead_after_s || p.entered < stall.seq)) out.push_back(p);
  return out;
}

std::string describe_stall(const Stall& stall, const std::vector<PeerState>& missing,
                           const std::vector<std::string>& hosts, double summary_age_s,
                           double dead_after_s) {
  auto host = [&](int r) {
    return r >= 0 && r < static_cast<int>(hosts.size()) ? hosts[r] : std::string("?");
  };
  std::ostringstream m;
  m.setf(std::ios::fixed);
  m.precision(1);
  m << "watchdog: collective #" << stall.seq << " (" << stall.op << ", " << mb(stall.bytes)
    << ") has not completed after " << stall.waited_s << " s on rank " << stall.rank << " ("
    << host(stall.rank) << "; dist.timeout_s = " << stall.timeout_s << ")";
  if (missing.empty()) {
    m << "\n  every rank reached it: MPI or the network between the nodes is stuck";
  }
  for (const auto& p : missing) {
    m << "\n  rank " << p.rank << " (" << host(p.rank) << "): ";
    if (p.rank == 0 && p.age_s == summary_age_s && stall.rank != 0) {
      m << "the coordinator has not answered heartbeats for " << p.age_s
        << " s: stopped, dead or unreachable from rank " << stall.rank;
    } else if (p.age_s > dead_after_s) {
      m << "silent for " << p.age_s << " s (stopped, dead or unreachable); last seen ";
      if (p.entered > p.done)
        m << "inside collective #" << p.entered;
      else
        m << "after collective #" << p.done;
    } else {
      m << "alive but never arrived: it is at collective #" << p.entered
        << (p.entered > p.done ? " (still inside it)" : " (completed; busy outside collectives)");
    }
  }
  m << "\n  ending the job (exit " << kExitRuntime << "); the last complete checkpoint is intact";
  return m.str();
}

struct Watchdog::Impl {
  int rank = 0, size = 1;
  std::vector<std::string> hosts;
  int sock = -1;
  uint32_t job = 0;
  std::vector<sockaddr_in> coordinator;  // rank 0's heartbeat addresses (ranks > 0)
  // The current collective, written by the communication thread.
  std::atomic<int64_t> entered{0}, done{0};
  std::atomic<const char*> op{""};
  std::atomic<int64_t> bytes{0};
  std::atomic<double> started{0};
  // Rank 0: every rank's last beat; others: rank 0's last summary.
  std::vector<PeerState> table;
  std::vector<double> heard;
  HeartbeatSummary summary;
  double summary_time = 0;
  double start_time = 0;
  double reported_at = -1;
};

Watchdog::Watchdog(MPI_Comm comm, double timeout_s) : impl_(std::make_unique<Impl>()) {
  timeout_s_.store(timeout_s);
  auto& m = *impl_;
  MPI_Comm_rank(comm, &m.rank);
  MPI_Comm_size(comm, &m.size);
  // Host names, for messages.
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  std::vector<char> all(static_cast<size_t>(m.size) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME,
                MPI_CHAR, comm);
  for (int r = 0; r < m.size; ++r) m.hosts.emplace_back(all.data() + r * MPI_MAX_PROCESSOR_NAME);

  // One UDP socket per rank; rank 0 publishes its port and addresses.
  m.sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  if (m.sock >= 0) bind(m.sock, reinterpret_cast<sockaddr*>(&any), sizeof any);
  std::string where;
  if (m.rank == 0 && m.sock >= 0) {
    sockaddr_in self{};
    socklen_t n = sizeof self;
    getsockname(m.sock, reinterpret_cast<sockaddr*>(&self), &n);
    where = std::to_string(ntohs(self.sin_port)) + ";" + join(local_addresses(), ',') + ";" +
            std::to_string(std::random_device{}());
  }
  int64_t n = static_cast<int64_t>(where.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, comm);
  where.resize(n);
  MPI_Bcast(where.data(), static_cast<int>(n), MPI_CHAR, 0, comm);
  if (!where.empty()) {
    auto parts = split(where, ';');
    if (parts.size() > 2) m.job = static_cast<uint32_t>(std::stoul(parts[2]));
  }
  if (m.rank != 0 && !where.empty()) {
    auto parts = split(where, ';');
    const int port = std::stoi(parts.at(0));
    const bool same_host = m.hosts[m.rank] == m.hosts[0];
    for (const auto& ip : parts.size() > 1 ? split(parts[1], ',') : std::vector<std::string>{}) {
      if (ip.rfind("127.", 0) == 0 && !same_host) continue;
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) == 1) m.coordinator.push_back(a);
    }
  }
  if (m.sock < 0 || (m.rank != 0 && m.coordinator.empty()))
    log::warn("watchdog: no heartbeat channel to rank 0; stalls are still detected but the "
              "missing rank cannot be named");
  m.start_time = now_s();
  m.table.resize(m.size);
  m.heard.assign(m.size, m.start_time);
  for (int r = 0; r < m.size; ++r) m.table[r].rank = r;
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (impl_->sock >= 0) close(impl_->sock);
}

void Watchdog::enter(int64_t seq, const char* op, int64_t bytes) {
  impl_->op.store(op);
  impl_->bytes.store(bytes);
  impl_->started.store(now_s());
  impl_->entered.store(seq);
}

void Watchdog::leave(int64_t seq) { impl_->done.store(seq); }

void Watchdog::loop() {
  auto& m = *impl_;
  double next_beat = 0, next_summary = 0;
  std::vector<char> buf(65536);
  while (!stop_.load()) {
    const double now = now_s();
    if (m.rank != 0 && now >= next_beat && m.sock >= 0) {
      Beat b{kBeatMagic, m.rank, m.job, 0, m.entered.load(), m.done.load()};
      for (const auto& a : m.coordinator)
        sendto(m.sock, &b, sizeof b, 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
      next_beat = now + kBeatInterval;
    }
    if (m.rank == 0 && now >= next_summary) {
      m.table[0].entered = m.entered.load();
      m.table[0].done = m.done.load();
      m.heard[0] = now;
      for (int r = 0; r < m.size; ++r) m.table[r].age_s = now - m.heard[r];
      m.summary = summarise(m.table, kDeadAfter, kLaggardLimit);
      m.summary_time = now;
      next_summary = now + 0.25;
    }
    pollfd pfd{m.sock, POLLIN, 0};
    if (m.sock >= 0 && poll(&pfd, 1, 100) > 0) {
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      ssize_t got;
      while ((got = recvfrom(m.sock, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from),
                             &flen)) > 0) {
        if (m.rank == 0) {
          Beat b;
          if (static_cast<size_t>(got) != sizeof b) continue;
          std::memcpy(&b, buf.data(), sizeof b);
          if (b.magic != kBeatMagic || b.job != m.job || b.rank <= 0 || b.rank >= m.size) continue;
          m.table[b.rank].entered = b.entered;
          m.table[b.rank].done = b.done;
          m.heard[b.rank] = now_s();
          auto reply = encode(m.summary, m.job);
          sendto(m.sock, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
        } else if (decode(buf.data(), static_cast<size_t>(got), m.job, m.summary)) {
          m.summary_time = now_s();
        }
        flen = sizeof from;
      }
    } else if (m.sock < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const double t = now_s();
    // Before rank 0's first answer, measure silence from the start.
    const double summary_age = t - std::max(m.summary_time, m.start_time);
    check_stall(t, summary_age);
  }
}

void Watchdog::check_stall(double now, double summary_age) {
  auto& m = *impl_;
  const int64_t seq = m.entered.load();
  if (seq <= m.done.load()) return;  // not inside a collective
  const double waited = now - m.started.load();
  const double timeout = timeout_s_.load();
  if (waited <= timeout) return;
  Stall stall{m.rank, seq, m.op.load(), m.bytes.load(), waited, timeout};
  auto missing = missing_ranks(stall, m.summary, summary_age, kDeadAfter);
  // The lowest rank that is itself waiting prints the verdict; the others say one line and give
  // it a moment to be printed before ending (mpirun tears the job down at the first exit).
  bool reporter = true;
  for (int r = 0; r < m.rank && reporter; ++r)
    reporter = std::any_of(missing.begin(), missing.end(), [r](const PeerState& p) { return p.rank == r; });
  if (summary_age > kDeadAfter) reporter = true;  // cut off from rank 0: say what we know
  if (m.summary.more > 0) reporter = true;  // too many missing to tell who is lowest: all say it
  if (reporter) {
    log::error("{}", describe_stall(stall, missing, m.hosts, summary_age, kDeadAfter));
  } else if (m.reported_at < 0) {
    m.reported_at = now;
    log::error("watchdog: collective #{} timed out after {:.1f} s; the verdict is on the lowest "
               "waiting rank's output", seq, waited);
    return;
  } else if (now - m.reported_at < 2.0) {
    return;
  }
  log::err().flush();
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(kExitRuntime);
}

}  // namespace odyssey
