// Few-shot evaluation by nearest class mean: episodes that draw K support samples per class from
// a labelled feature set and classify the others by cosine similarity to each class's mean.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace odyssey {

struct FewShotOptions {
  int64_t shots = 5;       // K support samples per class and episode
  int64_t episodes = 100;  // E episodes
  int64_t queries = 0;     // Q query samples per class and episode (0 = every non-support sample)
  uint64_t seed = 0;       // episode e draws from a stream seeded by (seed, e)
};

struct FewShotResult {
  int64_t ways = 0;                // classes present in the labels, all used in every episode
  int64_t queries_per_episode = 0;
  std::vector<double> accuracy;    // per episode, in [0, 1]
  double mean() const;
  // Half-width of the 95 % confidence interval of the mean: 1.96 x std / sqrt(E) (the std over
  // episodes with divisor E, as few-shot papers report it).
  double ci95() const;
};

// features float [N, D], labels int64 [N]. Each episode: per class a fresh random order of its
// samples; the first K are the support, the next Q (or all the others) the queries. Features and
// class means are L2-normalised, a query goes to the class of highest cosine similarity.
// class_names (optional) name the class in errors. Throws odyssey::Error when a class has fewer
// than K + max(Q, 1) samples.
// The error evaluate_fewshot would throw for these labels, thrown before any feature exists.
void check_fewshot_classes(const torch::Tensor& labels, const FewShotOptions& options,
                           const std::vector<std::string>& class_names = {});

FewShotResult evaluate_fewshot(const torch::Tensor& features, const torch::Tensor& labels,
                               const FewShotOptions& options,
                               const std::vector<std::string>& class_names = {});

}  // namespace odyssey
