// Few-shot evaluation: separable classes are classified perfectly, the confidence interval is
// 1.96 std / sqrt(E), episodes depend only on the seed, and too few samples is a clear error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "metrics/fewshot.h"
#include "test_util.h"

using namespace odyssey;

namespace {

// n samples per class of `classes` classes: class c around 5 * e_c in `dim` dimensions.
std::pair<torch::Tensor, torch::Tensor> clusters(int64_t classes, int64_t n, int64_t dim, double noise) {
  torch::manual_seed(0);
  auto labels = torch::arange(classes).repeat_interleave(n);
  auto centres = 5 * torch::eye(classes, dim);
  return {centres.index_select(0, labels) + noise * torch::randn({classes * n, dim}), labels};
}

}  // namespace

TEST(FewShot, SeparableClassesArePerfect) {
  torch::Tensor f, y;
  std::tie(f, y) = clusters(4, 20, 8, 0.1);
  auto r = evaluate_fewshot(f, y, {/*shots=*/3, /*episodes=*/10});
  EXPECT_EQ(r.ways, 4);
  EXPECT_EQ(r.queries_per_episode, 4 * 17);  // every sample not in the support
  ASSERT_EQ(r.accuracy.size(), 10u);
  EXPECT_DOUBLE_EQ(r.mean(), 1.0);
  EXPECT_DOUBLE_EQ(r.ci95(), 0.0);
  auto q = evaluate_fewshot(f, y, {/*shots=*/3, /*episodes=*/2, /*queries=*/5});
  EXPECT_EQ(q.queries_per_episode, 4 * 5);
}

TEST(FewShot, ConfidenceIntervalByHand) {
  FewShotResult r;
  r.accuracy = {0.5, 0.7, 0.6, 0.8};
  EXPECT_DOUBLE_EQ(r.mean(), 0.65);
  // std with divisor 4: sqrt((0.15^2 + 0.05^2 + 0.05^2 + 0.15^2) / 4) = sqrt(0.0125).
  EXPECT_NEAR(r.ci95(), 1.96 * std::sqrt(0.0125) / 2.0, 1e-12);
}

TEST(FewShot, EpisodesDependOnlyOnTheSeed) {
  torch::Tensor f, y;
  std::tie(f, y) = clusters(3, 30, 4, 3.0);  // overlapping classes: accuracy varies by episode
  FewShotOptions o{/*shots=*/1, /*episodes=*/20, /*queries=*/0, /*seed=*/7};
  auto a = evaluate_fewshot(f, y, o), b = evaluate_fewshot(f, y, o);
  EXPECT_EQ(a.accuracy, b.accuracy);
  o.seed = 8;
  EXPECT_NE(evaluate_fewshot(f, y, o).accuracy, a.accuracy);
  // Episode e is the same whatever the number of episodes.
  o.seed = 7;
  o.episodes = 5;
  auto c = evaluate_fewshot(f, y, o);
  EXPECT_EQ(c.accuracy, std::vector<double>(a.accuracy.begin(), a.accuracy.begin() + 5));
  EXPECT_GT(a.mean(), 0.4);  // well above chance (1/3) even with one shot
  EXPECT_LT(a.mean(), 1.0);
}

TEST(FewShot, TooFewSamplesNamesTheClass) {
  torch::Tensor f, y;
  std::tie(f, y) = clusters(2, 4, 3, 0.1);
  std::string e = odyssey::testing::error_of([&] { evaluate_fewshot(f, y, {/*shots=*/4, 1}, {"cat", "dog"}); });
  EXPECT_NE(e.find("class 'cat' (0) has 4 samples"), std::string::npos) << e;
  e = odyssey::testing::error_of([&] { evaluate_fewshot(f, y, {/*shots=*/2, 1, /*queries=*/3}); });
  EXPECT_NE(e.find("need 5"), std::string::npos) << e;
  EXPECT_NO_THROW(evaluate_fewshot(f, y, {/*shots=*/3, 1}));
}
