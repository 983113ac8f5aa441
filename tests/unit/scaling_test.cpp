// Scaling model: all-reduce costs, step timeline and calibration against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "scaling/allreduce_model.h"
#include "scaling/calibration.h"
#include "scaling/cluster.h"
#include "scaling/step_model.h"

using namespace odyssey::scaling;

namespace {

constexpr double kUs = 1e-6;

// One node of ranks: alpha 10 us, 1 GB/s.
Cluster one_node() {
  Cluster c;
  c.intra = {10 * kUs, 1e9};
  c.inter = {100 * kUs, 1e8};
  c.ranks_per_node = 0;
  return c;
}

// 8 ranks per node: NVLink-like 1 us, 100 GB/s; 4 NICs of 10 GB/s (40 GB/s per node), 10 us.
Cluster two_level() {
  Cluster c;
  c.intra = {1 * kUs, 100e9};
  c.inter = {10 * kUs, 10e9};
  c.nics_per_node = 4;
  c.ranks_per_node = 8;
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(AllreduceModel, RingAndTreeOnOneNode) {
  const Cluster c = one_node();
  // ring: 2(p-1) a + 2(p-1)/p S b = 6 x 10 us + 1.5 x 1 MB / 1 GB/s = 60 us + 1.5 ms
  EXPECT_NEAR(ring_allreduce_s(1e6, c, 4), 1.56e-3, 1e-12);
  // tree on one node is NCCL's chain: 2(g-1) a + 2 S b / 0.92
  EXPECT_NEAR(tree_allreduce_s(1e6, c, 4), 60e-6 + 2e-3 / 0.92, 1e-12);
  const AllreduceCost best = allreduce_cost(1e6, c, 4, Algorithm::kAuto);
  EXPECT_EQ(best.algorithm, Algorithm::kRing);
  EXPECT_NEAR(best.seconds, 1.56e-3, 1e-12);
  // Two ranks: 2 a + S b.
  EXPECT_NEAR(ring_allreduce_s(4e6, c, 2), 20e-6 + 4e-3, 1e-12);
}

TEST(AllreduceModel, RingAndTreeAcrossNodes) {
  const Cluster c = two_level();  // 64 ranks = 8 nodes x 8; beta = max(1/100, 1/40) ns/B = 25 ps/B
  // ring: (2*63 - 2*8) x 1 us + 2*8 x 10 us = 270 us; 2*63/64 x 8 MB x 25 ps = 393.75 us
  EXPECT_NEAR(ring_allreduce_s(8e6, c, 64), 270e-6 + 393.75e-6, 1e-12);
  // tree: 2 (7 x 1 us + log2(8) x 10 us) = 74 us; 2 x 8 MB x 25 ps / 0.92
  EXPECT_NEAR(tree_allreduce_s(8e6, c, 64), 74e-6 + 400e-6 / 0.92, 1e-12);
  EXPECT_EQ(allreduce_cost(8e6, c, 64, Algorithm::kAuto).algorithm, Algorithm::kTree);
  // Large messages: the ring's bandwidth term wins (NCCL picks the ring).
  EXPECT_EQ(allreduce_cost(800e6, c, 64, Algorithm::kAuto).algorithm, Algorithm::kRing);
  // Small messages: the tree's log2 latency wins.
  EXPECT_EQ(allreduce_cost(16, c, 64, Algorithm::kAuto).algorithm, Algorithm::kTree);
  // hierarchical: in the node 2 (7 x 1 us + 7/8 x 8 MB / 100 GB/s) = 154 us; across the nodes the
  // ring 2*7 x 10 us + 2*7/8 x 8 MB / 40 GB/s = 490 us beats the tree (60 us + 434.8 us).
  EXPECT_NEAR(hierarchical_allreduce_s(8e6, c, 64), 154e-6 + 490e-6, 1e-12);
  // 6 nodes (48 ranks): NCCL's tree counts floor(log2 6) = 2 steps across nodes, a binary tree's
  // depth: 2 (7 x 1 us + 2 x 10 us) = 54 us (ceil gave 3: 74 us).
  EXPECT_NEAR(tree_allreduce_s(8e6, c, 48), 54e-6 + 400e-6 / 0.92, 1e-12);
}

TEST(AllreduceModel, OneRankCostsNothing) {
  for (Algorithm a : {Algorithm::kRing, Algorithm::kTree, Algorithm::kHierarchical, Algorithm::kAuto}) {
    EXPECT_EQ(allreduce_cost(1e9, one_node(), 1, a).seconds, 0);
    EXPECT_EQ(allreduce_cost(1e9, two_level(), 1, a).seconds, 0);
  }
}

TEST(AllreduceModel, HierarchicalOnOneNodeIsTheFlatRing) {
  for (const Cluster& c : {one_node(), two_level()})
    for (int p : {2, 3, 4, 8})
      for (double s : {16.0, 1e6, 3e8})
        EXPECT_NEAR(hierarchical_allreduce_s(s, c, p), ring_allreduce_s(s, c, p), 1e-15) << p << " " << s;
}

TEST(AllreduceModel, HierarchicalWithOneRankPerNodeIsTheInterNodeAllreduce) {
  Cluster c = two_level();
  c.ranks_per_node = 1;
  c.nics_per_node = 1;
  // 4 nodes, one NIC of 10 GB/s each: every step crosses nodes: ring 6 x 10 us + 1.5 x 1 MB /
  // 10 GB/s = 60 + 150 us
  EXPECT_NEAR(ring_allreduce_s(1e6, c, 4), 210e-6, 1e-12);
  EXPECT_NEAR(hierarchical_allreduce_s(1e6, c, 4), 210e-6, 1e-12);
}

TEST(Cluster, PlacementFillsNodes) {
  const Cluster c = two_level();
  EXPECT_EQ(place(c, 4).nodes, 1);
  EXPECT_EQ(place(c, 4).per_node, 4);
  EXPECT_EQ(place(c, 64).nodes, 8);
  EXPECT_NE(error_of([&] { place(c, 12); }).find("12 ranks do not fill whole nodes of 8"), std::string::npos);
  EXPECT_NE(error_of([] { find_cluster_preset("h100"); }).find("h100-ib"), std::string::npos);
}

TEST(StepModel, BucketSizes) {
  const auto b = bucket_sizes(10 * kMiB, 1 * kMiB, 4 * kMiB);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], 1 * kMiB);
  EXPECT_EQ(b[1], 4 * kMiB);
  EXPECT_EQ(b[2], 4 * kMiB);
  EXPECT_EQ(b[3], 1 * kMiB);
  EXPECT_EQ(bucket_sizes(0.5 * kMiB, 1 * kMiB, 4 * kMiB).size(), 1u);
}

TEST(StepModel, OverlapHidesCommunicationUpToTheBackwardTime) {
  // Backward from 100 to 300 ms, four equal buckets ready at 150, 200, 250, 300 ms.
  const std::vector<double> bytes(4, 1.0);
  // 10 ms each: every bucket but the last is hidden.
  EXPECT_NEAR(exposed_after_backward(bytes, std::vector<double>(4, 0.010), 0.1, 0.3), 0.010, 1e-12);
  // 60 ms each: 150-210, 210-270, 270-330, 330-390: 90 ms after backward.
  EXPECT_NEAR(exposed_after_backward(bytes, std::vector<double>(4, 0.060), 0.1, 0.3), 0.090, 1e-12);
  // 100 buckets of 3 ms produced every 2 ms from 102 ms: busy from 102 to 402 ms: the 300 ms of
  // communication less the 200 ms of backward, plus the 2 ms before the first bucket.
  EXPECT_NEAR(exposed_after_backward(std::vector<double>(100, 1.0), std::vector<double>(100, 0.003), 0.1, 0.3),
              0.102, 1e-12);
}

TEST(StepModel, StepTimeThroughputAndEfficiency) {
  Cluster c = one_node();
  Workload w;
  w.compute_s_per_sample = 0.003;  // batch 100: 300 ms, backward the last 200 ms
  w.batch_per_rank = 100;
  w.grad_bytes = 4e6;
  w.first_bucket_bytes = 1e6;
  w.bucket_bytes = 1e6;  // 4 buckets of 1 MB; 2 ranks: 20 us + 1 ms each
  w.control_bytes = 16;  // 20 us + 16 ns
  const StepPrediction one = predict_step(w, c, 1, Algorithm::kAuto);
  EXPECT_EQ(one.exposed_s, 0);
  EXPECT_NEAR(one.step_s, 0.3, 1e-12);
  EXPECT_NEAR(one.images_per_s, 100 / 0.3, 1e-9);
  EXPECT_EQ(one.efficiency, 1);
  EXPECT_EQ(one.algorithm, "-");
  const StepPrediction two = predict_step(w, c, 2, Algorithm::kAuto);
  const double control = 20e-6 + 16e-9;
  EXPECT_NEAR(two.allreduce_s, 4 * 1.02e-3, 1e-12);
  EXPECT_NEAR(two.exposed_s, 1.02e-3 + control, 1e-12);  // only the last bucket shows
  EXPECT_NEAR(two.step_s, 0.3 + 1.02e-3 + control, 1e-12);
  EXPECT_NEAR(two.efficiency, 0.3 / two.step_s, 1e-12);
  EXPECT_EQ(two.algorithm, "ring");
  EXPECT_EQ(two.buckets, 4);
  // A measured overlap fraction replaces the timeline: half of 4.08 ms exposed.
  w.overlap = 0.5;
  EXPECT_NEAR(predict_step(w, c, 2, Algorithm::kAuto).exposed_s, 0.5 * 4.08e-3 + control, 1e-12);
  w.overlap = 1;
  EXPECT_NEAR(predict_step(w, c, 2, Algorithm::kAuto).exposed_s, control, 1e-12);
  // Strong scaling: a global batch of 200 is 100 per rank on 2 ranks.
  w.overlap = -1;
  w.batch_per_rank = 0;
  w.global_batch = 200;
  EXPECT_EQ(predict_step(w, c, 2, Algorithm::kAuto).batch_per_rank, 100);
  EXPECT_NE(error_of([&] { predict_step(w, c, 3, Algorithm::kAuto); }).find("does not split over 3"),
            std::string::npos);
}

TEST(StepModel, RanksSharingCoresSlowEachOther) {
  Cluster c = one_node();
  c.cores_per_node = 2;
  EXPECT_EQ(cpu_sharing_factor(c, 1, 1), 1);
  EXPECT_EQ(cpu_sharing_factor(c, 2, 1), 1);
  EXPECT_EQ(cpu_sharing_factor(c, 8, 1), 4);
  EXPECT_EQ(cpu_sharing_factor(c, 2, 2), 2);
  c.cores_per_node = 0;  // GPUs
  EXPECT_EQ(cpu_sharing_factor(c, 8, 1), 1);
  c.cores_per_node = 2;
  Workload w;
  w.compute_s_per_sample = 0.001;
  w.batch_per_rank = 10;
  w.grad_bytes = 1000;
  const StepPrediction eight = predict_step(w, c, 8, Algorithm::kRing);
  EXPECT_NEAR(eight.compute_s, 0.040, 1e-12);
  EXPECT_LT(eight.efficiency, 0.25);  // 8 ranks on 2 cores: at best 2 ranks' throughput
}

TEST(AllreduceModel, OversubscribedRanksShareTheCoreAndWaitForSwitches) {
  Cluster c = one_node();  // 10 us, 1 GB/s
  c.cores_per_node = 2;
  c.switch_s = 5 * kUs;
  // 8 ranks on 2 cores, k = 4: alpha 10 + 3 x 5 = 25 us per step, a quarter of the bandwidth:
  // 14 x 25 us + 2 x 7/8 x 1 MB x 4 / 1 GB/s = 350 us + 7 ms
  EXPECT_NEAR(ring_allreduce_s(1e6, c, 8), 350e-6 + 7e-3, 1e-12);
  // Up to the core count nothing changes: 2 x 10 us + 1 MB / 1 GB/s.
  EXPECT_NEAR(ring_allreduce_s(1e6, c, 2), 20e-6 + 1e-3, 1e-12);
  EXPECT_EQ(oversubscription(c, 8), 4);
  c.cores_per_node = 0;  // GPUs: never oversubscribed
  EXPECT_NEAR(ring_allreduce_s(1e6, c, 8), 140e-6 + 1.75e-3, 1e-12);
}

TEST(StepModel, StragglersWaitForTheSlowestRank) {
  // Exact E[max of n standard normals]: n = 2: 1/sqrt(pi) = 0.5642; n = 8: 1.4236; n = 256: 2.8215.
  EXPECT_EQ(expected_max_of_normals(1), 0);
  EXPECT_NEAR(expected_max_of_normals(2), 0.5642, 0.03);
  EXPECT_NEAR(expected_max_of_normals(8), 1.4236, 0.015);
  EXPECT_NEAR(expected_max_of_normals(256), 2.8215, 0.01);
  Workload w;
  w.compute_s_per_sample = 0.001;
  w.batch_per_rank = 100;
  w.grad_bytes = 1;
  w.jitter_cv = 0.1;
  w.control_bytes = 0;
  Cluster c = one_node();
  c.intra.alpha_s = 0;  // communication free: only the wait for the slowest rank is left
  EXPECT_NEAR(predict_step(w, c, 1, Algorithm::kRing).step_s, 0.1, 1e-12);
  const StepPrediction eight = predict_step(w, c, 8, Algorithm::kRing);
  EXPECT_NEAR(eight.compute_s, 0.1, 1e-12);
  // the wait, plus the one-byte bucket: 2 x 7/8 x 1 B / 1 GB/s
  EXPECT_NEAR(eight.exposed_s, 0.1 * 0.1 * expected_max_of_normals(8) + 1.75e-9, 1e-12);
}

TEST(Calibration, FitRecoversAlphaAndBetaExactly) {
  const double alpha = 25e-6, beta = 1 / 5e9;
  std::vector<Timing> t;
  for (int p : {2, 4, 8})
    for (double s = 4096; s <= 8e6; s *= 2)
      t.push_back({p, s, 2.0 * (p - 1) * alpha + 2.0 * (p - 1) / p * s * beta});
  const LinkFit f = fit_ring_link(t);
  EXPECT_FALSE(f.fitted_switch);
  EXPECT_NEAR(f.link.alpha_s / alpha, 1, 1e-9);
  EXPECT_NEAR(f.link.bytes_per_s / 5e9, 1, 1e-9);
  EXPECT_LT(f.rms_rel, 1e-9);
  EXPECT_EQ(f.used, static_cast<int>(t.size()));
  // The size range selects timings.
  EXPECT_EQ(fit_ring_link(t, 0, 0, 1e5).used, 3 * 5);  // 4, 8, 16, 32, 64 KiB at 3 rank counts
  // Three rank counts at one size still determine both (the rows are not proportional); one
  // rank count at one size does not.
  EXPECT_NEAR(fit_ring_link(t, 0, 0, 5000).link.alpha_s / alpha, 1, 1e-9);
  const std::vector<Timing> two_ranks(t.begin(), t.begin() + 3);
  EXPECT_NE(error_of([&] { fit_ring_link(two_ranks, 0, 0, 5000); }).find("at least two message sizes"),
            std::string::npos);
}

TEST(Calibration, FitRecoversTheSwitchCostOfOversubscribedRanks) {
  // 2 cores; timings at 2, 4 and 8 ranks made by the model itself (via a Cluster).
  Cluster c = one_node();
  c.intra = {0.5 * kUs, 5e9};
  c.cores_per_node = 2;
  c.switch_s = 4 * kUs;
  std::vector<Timing> t;
  for (int p : {2, 4, 8})
    for (double s = 16; s <= 8e6; s *= 4) t.push_back({p, s, ring_allreduce_s(s, c, p)});
  const LinkFit f = fit_ring_link(t, /*cores_per_node=*/2);
  EXPECT_TRUE(f.fitted_switch);
  EXPECT_NEAR(f.link.alpha_s / 0.5e-6, 1, 1e-9);
  EXPECT_NEAR(f.link.bytes_per_s / 5e9, 1, 1e-9);
  EXPECT_NEAR(f.switch_s / 4e-6, 1, 1e-9);
  EXPECT_LT(f.rms_rel, 1e-9);
  for (const auto& x : t) EXPECT_NEAR(ring_model_s(x, f, 2) / x.seconds, 1, 1e-9);
  // Oversubscribed timings quicker than any switch cost allows (noise): fitted again without one.
  c.switch_s = 0;
  std::vector<Timing> quick;
  for (int p : {2, 4})
    for (double s = 16; s <= 8e6; s *= 4)
      quick.push_back({p, s, ring_allreduce_s(s, c, p) * (p == 4 && s < 1e3 ? 0.5 : 1)});
  const LinkFit q = fit_ring_link(quick, 2);
  EXPECT_TRUE(q.fitted_switch);
  EXPECT_TRUE(q.switch_clamped);
  EXPECT_EQ(q.switch_s, 0);
  EXPECT_GT(q.link.alpha_s, 0);
}

TEST(Calibration, FitRecoversTheLinkBetweenNodesAsTheModelCostsIt) {
  // Nodes of 4 ranks, 20 GB/s and 1 us inside, 2 NICs of 2.5 GB/s and 5 us between them: timings
  // made by the model on 1, 2 and 4 nodes, the intra link fitted first, then the inter one.
  Cluster c = one_node();
  c.intra = {1 * kUs, 20e9};
  c.ranks_per_node = 4;
  c.nics_per_node = 2;
  c.inter = {5 * kUs, 2.5e9};
  std::vector<Timing> t;
  for (int p : {2, 4, 8, 16})
    for (double s = 4096; s <= 8e6; s *= 4) t.push_back({p, s, ring_allreduce_s(s, c, p), place(c, p).nodes});
  const LinkFit intra = fit_ring_link(t);  // the single-node timings only
  EXPECT_EQ(intra.used, 2 * 6);
  EXPECT_NEAR(intra.link.alpha_s / 1e-6, 1, 1e-9);
  const InterFit inter = fit_inter_link(t, intra);
  EXPECT_EQ(inter.per_node, 4);
  EXPECT_EQ(inter.used, 2 * 6);
  EXPECT_TRUE(inter.network_bound);
  EXPECT_NEAR(inter.alpha_s / 5e-6, 1, 1e-9);
  EXPECT_NEAR(inter.beta_node_s_per_byte * 5e9, 1, 1e-9);  // 2 NICs x 2.5 GB/s
  EXPECT_LT(inter.rms_rel, 1e-9);
  for (const auto& x : t) EXPECT_NEAR(ring_model_s(x, intra, 0, &inter) / x.seconds, 1, 1e-9);
  // The calibrated cluster, as `trainer simulate --calibrate` builds it, predicts 8 nodes alike.
  Cluster fitted = one_node();
  fitted.intra = intra.link;
  fitted.ranks_per_node = inter.per_node;
  fitted.nics_per_node = 2;
  fitted.inter = {inter.alpha_s, 1 / (inter.beta_node_s_per_byte * 2)};
  EXPECT_NEAR(ring_allreduce_s(1 << 20, fitted, 32) / ring_allreduce_s(1 << 20, c, 32), 1, 1e-9);
  // One kind of node per calibration; ranks that fill whole nodes alike.
  std::vector<Timing> mixed = t;
  mixed.push_back({12, 4096, 1e-4, 2});
  EXPECT_NE(error_of([&] { fit_inter_link(mixed, intra); }).find("with 4 and 6 ranks per node"), std::string::npos);
  mixed.back() = {9, 4096, 1e-4, 2};
  EXPECT_NE(error_of([&] { fit_inter_link(mixed, intra); }).find("do not fill whole nodes"), std::string::npos);
  // One rank a node: the network's beta alone, as the model costs it (no traffic inside nodes).
  Cluster single = c;
  single.ranks_per_node = 1;
  std::vector<Timing> spread;
  for (int p : {2, 4, 8})
    for (double s = 4096; s <= 8e6; s *= 4) spread.push_back({p, s, ring_allreduce_s(s, single, p), p});
  const InterFit one_each = fit_inter_link(spread, intra);
  EXPECT_EQ(one_each.per_node, 1);
  EXPECT_NEAR(one_each.beta_node_s_per_byte * 5e9, 1, 1e-9);
  for (const auto& x : spread) EXPECT_NEAR(ring_model_s(x, intra, 0, &one_each) / x.seconds, 1, 1e-9);
  // Timings that show no latency, noise making the fitted one negative: fitted again without it.
  std::vector<Timing> flat;
  for (double s : {1e6, 2e6, 4e6}) flat.push_back({8, s, ring_allreduce_s(s, single, 8) * (s == 1e6 ? 0.7 : 1), 8});
  const InterFit no_latency = fit_inter_link(flat, intra);
  EXPECT_TRUE(no_latency.alpha_clamped);
  EXPECT_EQ(no_latency.alpha_s, 0);
  EXPECT_GT(no_latency.beta_node_s_per_byte, 0);
  const std::vector<Timing> one_size = {{8, 4096, 1e-4, 2}, {8, 4096, 2e-4, 2}};
  EXPECT_NE(error_of([&] { fit_inter_link(one_size, intra); }).find("at least two message sizes"), std::string::npos);
}

TEST(Calibration, ReadsTheSweepFormatAndNamesABadLine) {
  const auto dir = std::filesystem::temp_directory_path() / ("odyssey-scaling-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "good.csv").string(), bad = (dir / "bad.csv").string();
  // launch/allreduce-sweep's header: the best time, then the median.
  std::ofstream(good) << "ranks,bytes,seconds,median_seconds\n# comment\n2,4096,1e-05,1.5e-05\n4,8192,2e-05,3e-05\n"
                          "8,8192,5e-05,6e-05,2\r\n";  // a CRLF line (a file saved on Windows)
  std::ofstream(bad) << "ranks,bytes,seconds\n2,4096,1e-05\n2,lots,1e-05\n";
  const auto t = read_timings(good);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[1].nodes, 1);  // no nodes column: one node
  EXPECT_EQ(t[2].nodes, 2);
  EXPECT_EQ(t[1].ranks, 4);
  EXPECT_EQ(t[1].bytes, 8192);
  EXPECT_EQ(t[1].seconds, 2e-5);
  EXPECT_NE(error_of([&] { read_timings(bad); }).find(bad + ":3"), std::string::npos);
  // A one-rank timing (a sweep of "1 2") is named with its line, not left to the fit.
  const std::string one = (dir / "one.csv").string();
  std::ofstream(one) << "ranks,bytes,seconds\n2,4096,1e-05\n1,4096,2e-07\n";
  const std::string e = error_of([&] { read_timings(one); });
  EXPECT_NE(e.find(one + ":3: 1 ranks, 4096 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("at least 2 ranks"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { read_timings((dir / "none.csv").string()); }).find("cannot read"), std::string::npos);
  std::filesystem::remove_all(dir);
}
