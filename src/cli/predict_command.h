// `trainer predict`: logits of a trained model for every image of a dataset split or shard.
#pragma once

#include <string>
#include <vector>

namespace odyssey {

// trainer predict --checkpoint W.h5 --data DIR_OR_SHARD --out P.h5 [--model NAME] [--split S]
//                 [--batch N]
// Writes /logits float32 [N, classes] and /labels int64 [N]. Returns the exit code.
int predict_command(const std::vector<std::string>& args);

}  // namespace odyssey
