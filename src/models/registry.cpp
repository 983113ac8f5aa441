#include "models/registry.h"

#include "common/error.h"

namespace odyssey {

void register_convnets(ModelRegistry& r);
void register_efficientnets(ModelRegistry& r);
void register_resnets(ModelRegistry& r);
void register_vits(ModelRegistry& r);

ModelRegistry::ModelRegistry() {
  register_convnets(*this);
  register_efficientnets(*this);
  register_resnets(*this);
  register_vits(*this);
}

ModelRegistry& ModelRegistry::instance() {
  static ModelRegistry registry;
  return registry;
}

void ModelRegistry::add(ModelEntry entry) {
  for (const auto& e : entries_)
    ODY_CHECK(e.name != entry.name, "model '" + entry.name + "' is registered twice", "");
  entries_.push_back(std::move(entry));
}

const ModelEntry& ModelRegistry::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return e;
  std::string known;
  for (const auto& e : entries_) known += (known.empty() ? "" : ", ") + e.name;
  ODY_FAIL("unknown model '" + name + "' (key model.name); known models: " + known,
           "`trainer models` lists them with their sizes");
}

std::shared_ptr<Classifier> ModelRegistry::create(const std::string& name,
                                                  const ModelOptions& options) const {
  return find(name).create(options);
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace odyssey
