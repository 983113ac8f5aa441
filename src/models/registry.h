// ModelRegistry: models by name. Unknown names fail listing the known ones.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/classifier.h"

namespace odyssey {

struct ModelEntry {
  std::string name;
  std::string description;
  int64_t default_image_size;
  std::function<std::shared_ptr<Classifier>(const ModelOptions&)> create;
};

class ModelRegistry {
 public:
  static ModelRegistry& instance();
  // Refuses duplicate names.
  void add(ModelEntry entry);
  std::shared_ptr<Classifier> create(const std::string& name, const ModelOptions& options) const;
  const ModelEntry& find(const std::string& name) const;
  const std::vector<ModelEntry>& entries() const { return entries_; }

 private:
  ModelRegistry();
  std::vector<ModelEntry> entries_;
};

// Parameters in the model (trainable or not; buffers excluded).
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace odyssey
