// Classification metrics on a hand-worked example (5 images, 3 classes), the CSV and JSONL sinks
// and their rewind to a resumed checkpoint.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "metrics/classification.h"
#include "metrics/csv.h"
#include "metrics/eval_file.h"
#include "metrics/jsonl.h"
#include "metrics/rewind.h"

using namespace odyssey;

namespace {

// Softmax of log(p) is p: the scores below are exactly the probabilities worked out by hand.
ClassificationCounts worked_example() {
  auto probs = torch::tensor({{0.70, 0.20, 0.10},    // label 0, predicted 0
                              {0.32, 0.58, 0.10},    // label 0, predicted 1
                              {0.14, 0.82, 0.04},    // label 1, predicted 1
                              {0.50, 0.15, 0.35},    // label 2, predicted 0
                              {0.05, 0.25, 0.70}},   // label 2, predicted 2
                             torch::kDouble);
  auto labels = torch::tensor({0, 0, 1, 2, 2}, torch::kLong);
  ClassificationCounts c(3, /*detailed=*/true);
  c.add(probs.log().to(torch::kFloat), labels);
  return c;
}

}  // namespace

TEST(Metrics, CountsOfTheWorkedExample) {
  auto c = worked_example();
  EXPECT_EQ(c.count(), 5);
  EXPECT_DOUBLE_EQ(c.top1(), 0.6);
  EXPECT_DOUBLE_EQ(c.top5(), 1.0);  // top-3 of 3 classes
  const double loss = -(std::log(0.7) + std::log(0.32) + std::log(0.82) + std::log(0.35) + std::log(0.7)) / 5;
  EXPECT_NEAR(c.loss(), loss, 1e-6);
  auto cm = c.confusion();
  EXPECT_TRUE(torch::equal(cm, torch::tensor({{1, 1, 0}, {0, 1, 0}, {1, 0, 1}}, torch::kLong)));
}

TEST(Metrics, TiedScoresKeepTopFiveAtLeastTopOneAndNoSamplesIsNaN) {
  // A zero-initialised head (ViT's) scores all 10 classes alike: topk() could name 5 of the tied
  // classes without the argmax (label 0 here) and put top-5 below top-1.
  ClassificationCounts c(10);
  EXPECT_TRUE(std::isnan(c.top1()) && std::isnan(c.loss()) && std::isnan(c.objective()))
      << "a window whose updates were all skipped has no loss, not loss 0";
  c.add(torch::zeros({8, 10}), torch::zeros({8}, torch::kLong));
  EXPECT_DOUBLE_EQ(c.top1(), 1.0);
  EXPECT_DOUBLE_EQ(c.top5(), 1.0);
  // Ties rank by class index, as argmax takes the first: labels 0-9 on tied scores hit top-5 for
  // classes 0-4 only (not all: a tie is no reason to count a hit).
  ClassificationCounts tied(10);
  tied.add(torch::zeros({10, 10}), torch::arange(10, torch::kLong));
  EXPECT_DOUBLE_EQ(tied.top1(), 0.1);
  EXPECT_DOUBLE_EQ(tied.top5(), 0.5);
  // Ranks: label 9 has 6 classes above it (a miss), label 4 has 4 above (a hit); a NaN row is no hit.
  ClassificationCounts d(10);
  auto scores = torch::arange(10, torch::kFloat).flip(0).unsqueeze(0).repeat({3, 1});  // class 0 best
  scores[0][9] = 3.5;
  scores[2][1] = std::nanf("");
  d.add(scores, torch::tensor({9, 4, 1}, torch::kLong));
  EXPECT_DOUBLE_EQ(d.top5(), 1.0 / 3);
  // The objective (the loss a training step minimised) is its own mean over the same samples.
  d.add_objective(torch::tensor(6.0, torch::kDouble));
  EXPECT_DOUBLE_EQ(d.objective(), 2.0);
  EXPECT_EQ(d.sums().numel(), 3) << "eval-latest.h5 keeps its [loss, top-1, top-k] sums";
}

TEST(Metrics, PrecisionRecallF1IoUByHand) {
  auto c = worked_example();
  const std::vector<double> precision = {0.5, 0.5, 1.0}, recall = {0.5, 1.0, 0.5},
                            f1 = {0.5, 2.0 / 3, 2.0 / 3}, iou = {1.0 / 3, 0.5, 0.5};
  for (int k = 0; k < 3; ++k) {
    EXPECT_DOUBLE_EQ(c.per_class_precision()[k], precision[k]) << k;
    EXPECT_DOUBLE_EQ(c.per_class_recall()[k], recall[k]) << k;
    EXPECT_NEAR(c.per_class_f1()[k], f1[k], 1e-12) << k;
    EXPECT_NEAR(c.per_class_iou()[k], iou[k], 1e-12) << k;
  }
  EXPECT_NEAR(c.macro_f1(), (0.5 + 4.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(c.mean_iou(), 4.0 / 9, 1e-12);
  auto [worst, r] = worst_class(c);
  EXPECT_EQ(worst, 0);  // recall 0.5, the first of the two lowest
  EXPECT_DOUBLE_EQ(r, 0.5);
}

TEST(Metrics, AveragePrecisionAndPrCurveByHand) {
  auto c = worked_example();
  // Class 0 by decreasing score: .70 P, .50 N, .32 P, .14 N, .05 N
  //   -> (R, P) = (.5, 1), (.5, .5), (1, 2/3), (1, .5), (1, .4); AP = .5 x 1 + .5 x 2/3.
  EXPECT_NEAR(c.average_precision(0), 0.5 + 1.0 / 3, 1e-12);
  EXPECT_NEAR(c.average_precision(1), 1.0, 1e-12);
  EXPECT_NEAR(c.average_precision(2), 1.0, 1e-12);
  EXPECT_NEAR(c.mean_ap(), (0.5 + 1.0 / 3 + 2) / 3, 1e-12);
  auto pr = c.pr_curve(0);
  ASSERT_EQ(pr.size(), 5u);
  EXPECT_DOUBLE_EQ(pr[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(pr[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(pr[1].precision, 0.5);
  EXPECT_NEAR(pr[2].precision, 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(pr[4].precision, 0.4);
}

TEST(Metrics, MacroF1CountsAClassPredictedButNeverInTheLabels) {
  // Labels 0 0 1 1, predictions 0 0 1 2: F1 1, 2/3 and 0 (class 2, predicted only), as sklearn's
  // f1_score(average="macro") averages them; it was the mean over the labels' classes, 5/6.
  ClassificationCounts c(3, /*detailed=*/false);
  auto logits = torch::zeros({4, 3});
  for (auto [i, k] : {std::pair{0, 0}, {1, 0}, {2, 1}, {3, 2}}) logits[i][k] = 5;
  c.add(logits, torch::tensor({0, 0, 1, 1}, torch::kLong));
  EXPECT_NEAR(c.macro_f1(), (1 + 2.0 / 3 + 0) / 3, 1e-12);
}

TEST(Metrics, AveragePrecisionKeepsTheOrderOfSmallScoresAmongManyClasses) {
  // 1,000 classes: class 0's one positive scores 1e-4, its three negatives ~3e-7. Bins equal in
  // the probability (0.01 wide here) tied all four (AP 1/4); equal in the log-odds, the positive
  // ranks first, as sklearn's average_precision_score has it.
  ClassificationCounts c(1000, /*detailed=*/true);
  auto logits = torch::zeros({4, 1000});
  logits[0][0] = std::log(1e-4 * 999 / (1 - 1e-4));
  for (int i = 1; i < 4; ++i) logits[i][0] = -5, logits[i][1] = 10;
  c.add(logits, torch::tensor({0, 1, 1, 1}, torch::kLong));
  EXPECT_NEAR(c.average_precision(0), 1.0, 1e-12);
  EXPECT_NEAR(c.average_precision(1), 1.0, 1e-12);
}

TEST(Metrics, ExpectedCalibrationErrorByHand) {
  auto c = worked_example();
  // 15 bins: {.70 ok, .70 ok} -> |1 - .7| x 2/5; .58 wrong -> .58/5; .82 ok -> .18/5; .50 wrong -> .5/5.
  EXPECT_NEAR(c.ece(), 0.3 * 0.4 + 0.58 / 5 + 0.18 / 5 + 0.5 / 5, 1e-6);
}

TEST(Metrics, EvalFileRoundTrip) {
  auto c = worked_example();
  const auto path = (std::filesystem::temp_directory_path() / "odyssey_eval_test.h5").string();
  write_eval_file(path, c, {"a", "b", "c"}, 42);
  auto back = read_eval_file(path);
  EXPECT_EQ(back.step, 42);
  EXPECT_EQ(back.class_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(torch::equal(back.counts.confusion(), c.confusion()));
  EXPECT_DOUBLE_EQ(back.counts.mean_ap(), c.mean_ap());
  EXPECT_DOUBLE_EQ(back.counts.ece(), c.ece());
  EXPECT_DOUBLE_EQ(back.counts.loss(), c.loss());
  std::filesystem::remove(path);
}

TEST(Metrics, CsvRoundTripWithQuoting) {
  const auto path = (std::filesystem::temp_directory_path() / "odyssey_csv_test.csv").string();
  std::filesystem::remove(path);
  {
    CsvWriter w(path, {"kind", "step", "worst_class"});
    w.write({{"kind", "train"}, {"step", "10"}});
    w.write({{"kind", "eval"}, {"step", "20"}, {"worst_class", "T-shirt, \"top\""}});
    EXPECT_THROW(w.write({{"nope", "1"}}), std::exception);
  }
  CsvWriter again(path, {"kind", "step", "worst_class"});  // appends, no second header
  again.write({{"kind", "train"}, {"step", "30"}});
  auto rows = read_csv(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].count("worst_class"), 0u);
  EXPECT_EQ(rows[1].at("worst_class"), "T-shirt, \"top\"");
  EXPECT_EQ(rows[2].at("step"), "30");
  // A run resumed by a build with more columns: the old rows move under the new header by name.
  CsvWriter wider(path, {"kind", "step", "loss_ce", "worst_class"});
  wider.write({{"kind", "train"}, {"step", "40"}, {"loss_ce", "0.5"}});
  rows = read_csv(path);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1].at("worst_class"), "T-shirt, \"top\"");
  EXPECT_EQ(rows[3].at("loss_ce"), "0.5");
  EXPECT_EQ(rows[3].count("worst_class"), 0u);
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "kind,step,loss_ce,worst_class");
  std::filesystem::remove(path);
}

TEST(Metrics, RewindDropsTheRecordsAfterTheResumedStep) {
  const auto dir = std::filesystem::temp_directory_path() / "odyssey_rewind_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto csv = (dir / "metrics.csv").string(), jsonl = (dir / "metrics.jsonl").string();
  {
    CsvWriter c(csv, {"kind", "step", "worst_class"});
    JsonlWriter j(jsonl);
    for (int64_t step : {5, 10, 15, 20}) {
      c.write({{"kind", "train"}, {"step", std::to_string(step)}});
      j.write(JsonRecord().add("kind", "train").add("step", step).add("loss", 1.0));
    }
    // The evaluation at step 10 (its worst class named like a record) belongs to the checkpoint.
    c.write({{"kind", "eval"}, {"step", "10"}, {"worst_class", "a,20"}});
    j.write(JsonRecord().add("kind", "eval").add("step", int64_t{10}).add("worst_class", "\"step\":99"));
  }
  std::ofstream(jsonl, std::ios::app) << "{\"kind\":\"train\",\"st";  // cut by a crash mid-write
  auto text = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string csv_before = text(csv);
  EXPECT_EQ(drop_records_after(csv, 20), 0);
  EXPECT_EQ(text(csv), csv_before) << "nothing after step 20: untouched";
  EXPECT_EQ(drop_records_after(csv, 10), 2);
  EXPECT_EQ(drop_records_after(jsonl, 10), 3) << "two records and the cut line";
  const auto rows = read_csv(csv);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("step"), "5");
  EXPECT_EQ(rows[1].at("step"), "10");
  EXPECT_EQ(rows[2].at("worst_class"), "a,20");
  EXPECT_EQ(text(jsonl), "{\"kind\":\"train\",\"step\":5,\"loss\":1}\n"
                         "{\"kind\":\"train\",\"step\":10,\"loss\":1}\n"
                         "{\"kind\":\"eval\",\"step\":10,\"worst_class\":\"\\\"step\\\":99\"}\n");
  // A line cut inside its step's digits (step 150 written as far as "1") goes too, even with
  // nothing after the step to drop; a whole line without a readable step stays.
  std::ofstream(jsonl, std::ios::app) << "{\"kind\":\"note\"}\n{\"kind\":\"train\",\"step\":1";
  EXPECT_EQ(drop_records_after(jsonl, 10), 1);
  EXPECT_EQ(text(jsonl).substr(text(jsonl).size() - 16), "{\"kind\":\"note\"}\n");
  EXPECT_EQ(drop_records_after((dir / "absent.jsonl").string(), 0), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "absent.jsonl"));
  std::filesystem::remove_all(dir);
}
