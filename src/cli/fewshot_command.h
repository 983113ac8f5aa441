// `trainer fewshot`: few-shot accuracy of a trained model's pooled features (nearest class mean).
#pragma once

#include <string>
#include <vector>

namespace odyssey {

// trainer fewshot --checkpoint W.h5 --data DIR_OR_SHARD --shots K --episodes E [--split S]
//                 [--queries Q] [--model NAME] [--seed N] [--batch N]
// Prints the mean accuracy over the episodes with its 95 % confidence interval. Returns the exit
// code.
int fewshot_command(const std::vector<std::string>& args);

}  // namespace odyssey
