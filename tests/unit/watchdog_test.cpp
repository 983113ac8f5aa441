// The watchdog's verdict: which ranks did not arrive at a stalled collective, and what it says.
#include <gtest/gtest.h>

#include "dist/watchdog.h"

using namespace odyssey;

namespace {

std::vector<PeerState> four_ranks_one_behind_one_silent() {
  // Ranks 0 and 2 wait in collective #12; rank 1 is still at #11 (busy); rank 3 went silent
  // inside #12.
  return {{0, 12, 11, 0.1}, {1, 11, 11, 0.4}, {2, 12, 11, 0.2}, {3, 12, 11, 9.0}};
}

const std::vector<std::string> kHosts = {"node-a", "node-a", "node-b", "node-b"};

}  // namespace

TEST(Watchdog, SummaryListsSilentRanksFirstThenTheFurthestBehind) {
  auto s = summarise(four_ranks_one_behind_one_silent(), 3.0, 32);
  EXPECT_EQ(s.size, 4);
  EXPECT_EQ(s.max_entered, 12);
  ASSERT_EQ(s.laggards.size(), 2u);
  EXPECT_EQ(s.laggards[0].rank, 3);
  EXPECT_EQ(s.laggards[1].rank, 1);
  EXPECT_EQ(s.more, 0);
  auto capped = summarise(four_ranks_one_behind_one_silent(), 3.0, 1);
  EXPECT_EQ(capped.laggards.size(), 1u);
  EXPECT_EQ(capped.more, 1);
}

TEST(Watchdog, NamesTheRanksThatNeverArrivedWithTheirHosts) {
  auto s = summarise(four_ranks_one_behind_one_silent(), 3.0, 32);
  Stall stall{2, 12, "allreduce", 4000000, 31.5, 30};
  auto missing = missing_ranks(stall, s, 0.3, 3.0);
  ASSERT_EQ(missing.size(), 2u);
  std::string text = describe_stall(stall, missing, kHosts, 0.3, 3.0);
  EXPECT_NE(text.find("collective #12 (allreduce, 4.00 MB) has not completed after 31.5 s on rank 2 (node-b"),
            std::string::npos) << text;
  EXPECT_NE(text.find("rank 3 (node-b): silent for 9.0 s"), std::string::npos) << text;
  EXPECT_NE(text.find("rank 1 (node-a): alive but never arrived: it is at collective #11"),
            std::string::npos) << text;
  EXPECT_EQ(text.find("rank 0 (node-a)"), std::string::npos) << text;
}

TEST(Watchdog, WithoutAnswersFromRankZeroRankZeroIsTheSuspect) {
  Stall stall{1, 40, "barrier", 0, 12.0, 10};
  auto missing = missing_ranks(stall, HeartbeatSummary{}, 8.0, 3.0);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].rank, 0);
  std::string text = describe_stall(stall, missing, kHosts, 8.0, 3.0);
  EXPECT_NE(text.find("rank 0 (node-a): the coordinator has not answered heartbeats for 8.0 s"),
            std::string::npos) << text;
}

TEST(Watchdog, WhenEveryRankArrivedItBlamesTheTransport) {
  std::vector<PeerState> all = {{0, 5, 4, 0.1}, {1, 5, 4, 0.1}};
  Stall stall{0, 5, "allreduce", 8, 20, 10};
  auto missing = missing_ranks(stall, summarise(all, 3.0, 32), 0, 3.0);
  EXPECT_TRUE(missing.empty());
  EXPECT_NE(describe_stall(stall, missing, kHosts, 0, 3.0).find("every rank reached it"),
            std::string::npos);
}
