// Loading weights into a registry model: strict by name and shape, with the classifier head
// optionally kept fresh (transfer learning) and ViT position embeddings resized to the model's
// image size.
#pragma once

#include <string>

#include "models/classifier.h"
#include "train/optimizer.h"  // NamedTensors

namespace odyssey {

// Copies weights into model. Every key of the model must be in the file with the same shape,
// and the file may hold no other keys, except: with reset_head the head's keys are skipped; an
// "encoder.pos_embedding" of another grid size is interpolated (bicubic, as torchvision).
void load_weights(Classifier& model, const NamedTensors& weights, bool reset_head,
                  const std::string& path);

// torchvision's interpolate_embeddings: [1, 1 + g*g, D] -> [1, 1 + n*n, D].
torch::Tensor resize_pos_embedding(const torch::Tensor& pos, int64_t new_tokens);

}  // namespace odyssey
