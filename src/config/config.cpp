#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "common/toml_where.h"
#include "config/config_schema.h"

namespace odyssey {

namespace {

// "file:line" for a value from the file, "command line" for an override.
std::string where_of(const toml::node& n, const std::string& file) {
  const std::string where = toml_where(n);
  if (!where.empty()) return where;
  return file.empty() ? "command line" : "command line override";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(const std::string& name) {
  // The key in another section first (train.lr for optim.lr): edit distance misses those.
  const auto dot = name.find('.');
  if (dot != std::string::npos && dot + 1 < name.size()) {
    std::vector<std::string> same_key;  // one section only: "name" or "device" is in several
    for (const auto& f : schema())
      if (f.key == name.substr(dot + 1)) same_key.push_back(f.name());
    if (same_key.size() == 1) return "did you mean '" + same_key[0] + "'?";
  }
  std::string best;
  size_t best_d = 4;  // suggest only close names
  for (const auto& f : schema()) {
    size_t d = edit_distance(name, f.name());
    if (d < best_d) best_d = d, best = f.name();
  }
  return best.empty() ? "see `trainer --config-reference` for every key"
                      : "did you mean '" + best + "'?";
}

// Applies one "section.key=value" override to the table. Values parse as TOML; a value that is
// not valid TOML is taken as a plain string (so run.name=abc works without quotes).
void apply_override(toml::table& root, const std::string& item) {
  auto eq = item.find('=');
  ODY_CHECK(eq != std::string::npos && eq > 0,
            "command line: override '" + item + "' is not of the form section.key=value",
            "e.g. train.epochs=3");
  std::string path = item.substr(0, eq), text = item.substr(eq + 1);
  auto dot = path.find('.');
  ODY_CHECK(dot != std::string::npos && dot > 0 && dot + 1 < path.size(),
            "command line: override key '" + path + "' is not of the form section.key",
            did_you_mean(path));
  std::string section = path.substr(0, dot), key = path.substr(dot + 1);
  // A string key takes the text as it is (run.name=nan, run.name=2024) unless it is quoted.
  const Field* field = find_field(path);
  const bool quoted_text = !text.empty() && (text.front() == '"' || text.front() == '\'');
  toml::table parsed;
  if (field && field->type == "string" && !quoted_text) {
    parsed = toml::table{{"v", text}};
  } else {
    try {
      parsed = toml::parse("v = " + text);
    } catch (const toml::parse_error& e) {
      // Unknown keys keep the text (their error names the key); a known key's value, or a
      // quoted text, that is not TOML says why here rather than "must be a number, got string".
      ODY_CHECK(!field && !quoted_text,
                "command line: override '" + item + "': " +
                    (field && field->type != "string" ? "key '" + path + "' must be " +
                                                            (field->type == "integer" ? "an " : "a ") +
                                                            field->type + "; "
                                                      : std::string()) +
                    "the value is not valid TOML (" + std::string(e.description()) + ")",
                field ? "e.g. " + path + "=" + field->get(Config{}) : "close the quotes");
      parsed = toml::table{{"v", text}};
    }
  }
  if (!root.contains(section)) root.insert(section, toml::table{});
  toml::table* tbl = root[section].as_table();
  ODY_CHECK(tbl, "command line: '" + section + "' is not a table in the config", "");
  tbl->insert_or_assign(key, *parsed["v"].node());
}

Config from_table(const toml::table& root, const std::string& file) {
  Config cfg;
  cfg.source = file;
  for (auto&& [skey, snode] : root) {
    std::string section(skey.str());
    const toml::table* tbl = snode.as_table();
    if (!tbl) {
      // Mostly a key written above every [section] header (epochs = 3 at the top of the file).
      ODY_FAIL(ODY_MSG(where_of(snode, file) << ": '" << section << "' must be a table [" << section
                                           << "], not a value of type " << snode.type()
                                           << " (a key before any [section] header?)"),
               did_you_mean("?." + section));
    }
    for (auto&& [kkey, vnode] : *tbl) {
      std::string name = section + "." + std::string(kkey.str());
      const Field* field = find_field(name);
      if (!field)
        ODY_FAIL(ODY_MSG(where_of(vnode, file) << ": unknown key '" << name << "'"),
                 did_you_mean(name));
      field->set(cfg, vnode, where_of(vnode, file));
    }
  }
  return cfg;
}

// Keys set (in the file or on the command line) that other keys leave without effect: a note on
// rank 0, not an error, so that an override such as augment.randaugment_n=0 ablates without
// editing the file.
void note_inert_keys(const toml::table& root, const Config& cfg) {
  // Set, and to another value than the default: a run's own config.toml (every key written) fed
  // back in is no reason for notes.
  const Config defaults;
  auto set = [&](const char* table, const char* key) {
    if (root[table][key].node() == nullptr) return false;
    const Field* f = find_field(std::string(table) + "." + key);
    return !f || f->get(cfg) != f->get(defaults);
  };
  std::vector<std::string> inert;
  for (const char* key : {"shuffle_block", "shuffle_window"})
    if (cfg.data.shuffle == "global" && set("data", key))
      inert.push_back(std::string("data.") + key + " (data.shuffle = \"global\")");
  if (cfg.augment.mixup_alpha == 0 && cfg.augment.cutmix_alpha == 0 && set("augment", "mix_p"))
    inert.push_back("augment.mix_p (mixup_alpha and cutmix_alpha are 0)");
  if (cfg.augment.erasing_p == 0 && set("augment", "erasing_mode"))
    inert.push_back("augment.erasing_mode (augment.erasing_p = 0)");
  for (const char* key : {"randaugment_m", "randaugment_policy", "randaugment_mstd"})
    if (cfg.augment.randaugment_n == 0 && set("augment", key))
      inert.push_back(std::string("augment.") + key + " (augment.randaugment_n = 0)");
  if (cfg.optim.nesterov && set("optim", "nesterov") &&
      (cfg.optim.momentum == 0 || (cfg.optim.name != "sgd" && cfg.optim.name != "lars")))
    inert.push_back(cfg.optim.momentum == 0 ? "optim.nesterov (optim.momentum = 0: plain SGD)"
                                            : "optim.nesterov (optim.name = \"" + cfg.optim.name + "\")");
  // Optimizer and schedule keys that the chosen ones do not read (optimizer.cpp, lr_at).
  const std::string& opt = cfg.optim.name;
  const std::vector<std::pair<const char*, std::vector<std::string>>> optim_keys = {
      {"beta1", {"adamw", "lamb"}}, {"beta2", {"adamw", "lamb"}}, {"eps", {"adamw", "lamb", "rmsprop"}},
      {"rho", {"rmsprop"}},         {"trust_coef", {"lars"}},     {"momentum", {"sgd", "lars", "rmsprop"}}};
  for (const auto& [key, users] : optim_keys)
    if (set("optim", key) && std::find(users.begin(), users.end(), opt) == users.end())
      inert.push_back(std::string("optim.") + key + " (optim.name = \"" + opt + "\")");
  for (const char* key : {"decay_epochs", "decay_rate"})
    if (set("schedule", key) && cfg.schedule.name != "step" && cfg.schedule.name != "exponential")
      inert.push_back(std::string("schedule.") + key + " (schedule.name = \"" + cfg.schedule.name + "\")");
  for (const auto& what : inert) log::info("note: {}: {} has no effect", cfg.source, what);
}

}  // namespace

Config parse_config(const std::string& text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    ODY_FAIL(ODY_MSG(source_name << ":" << e.source().begin.line << ":" << e.source().begin.column
                                 << ": TOML syntax error: " << e.description()),
             "check the TOML syntax on that line");
  }
  // Overrides lose their line numbers, which tells the user they came from the command line;
  // checks across keys name both sources.
  for (const auto& o : overrides) apply_override(root, o);
  Config cfg = from_table(root, source_name);
  if (!overrides.empty()) cfg.source = source_name + " with its command-line overrides";
  // run.name is a folder under run.out_dir (sweep/lr1 nests): empty (an unset $NAME), absolute,
  // or with a '.' or '..' part, it would put the run's files beside other runs' or outside out_dir.
  bool name_ok = !cfg.run.name.empty() && cfg.run.name.front() != '/';
  for (const auto& part : split(cfg.run.name, '/')) name_ok = name_ok && !part.empty() && part != "." && part != "..";
  ODY_CHECK(name_ok,
            cfg.source + ": run.name = " + quote_string(cfg.run.name) +
                " is not a folder under run.out_dir (empty, absolute, or with an empty, '.' or '..' part)",
            "run.out_dir sets where run folders live; run.name names this run's, e.g. run.name=vit-b16-lr5e-4");
  ODY_CHECK(cfg.train.batch_size % cfg.train.accum_steps == 0,
            ODY_MSG(cfg.source << ": train.accum_steps = " << cfg.train.accum_steps
                               << " does not divide train.batch_size = " << cfg.train.batch_size),
            "micro-batches must be equal: choose a divisor of the batch size");
  for (const auto& [key, rate] : {std::pair<const char*, double>{"model.dropout", cfg.model.dropout},
                                  {"model.stochastic_depth", cfg.model.stochastic_depth}})
    ODY_CHECK(rate == -1 || rate >= 0,
              ODY_MSG(cfg.source << ": " << key << " = " << rate << " is neither -1 (the "
                                 << "architecture's default) nor a rate in [0, 0.99]"),
              "");
  ODY_CHECK(cfg.augment.randaugment_policy != "timm" || cfg.augment.randaugment_m <= 10,
            ODY_MSG(cfg.source << ": augment.randaugment_m = " << cfg.augment.randaugment_m
                               << " with augment.randaugment_policy = \"timm\", whose levels run 0-10"),
            "timm's rand-m9 is randaugment_m = 9; torchvision's bins run 0-30");
  ODY_CHECK(cfg.augment.randaugment_mstd == 0 || cfg.augment.randaugment_policy == "timm",
            ODY_MSG(cfg.source << ": augment.randaugment_mstd = " << cfg.augment.randaugment_mstd
                               << " with augment.randaugment_policy = \"torchvision\", which has no "
                               << "magnitude noise"),
            "set augment.randaugment_policy = \"timm\" or remove augment.randaugment_mstd");
  ODY_CHECK(cfg.data.aug_repeats == 1 || cfg.data.shuffle == "global",
            ODY_MSG(cfg.source << ": data.aug_repeats = " << cfg.data.aug_repeats << " with data.shuffle = \""
                               << cfg.data.shuffle << "\": repeated augmentation draws from the global shuffle"),
            "set data.shuffle = \"global\" or data.aug_repeats = 1");
  ODY_CHECK(!cfg.model.reset_head || !cfg.model.init_from.empty(),
            cfg.source + ": model.reset_head = true without model.init_from: there are no weights "
            "whose head it could leave out",
            "set model.init_from to the weights to fine-tune, or remove model.reset_head");
  note_inert_keys(root, cfg);
  if (cfg.optim.lr == 0)
    log::info("warning: {}: optim.lr = 0: the weights will not change (only BatchNorm statistics move)",
              cfg.source);  // every rank parses: printed once
  return cfg;
}

AugmentConfig stored_eval_input(const std::string& text) {
  AugmentConfig input;
  try {
    const toml::table root = toml::parse(text);
    input.image_size = root["augment"]["image_size"].value_or(input.image_size);
    input.eval_crop = root["augment"]["eval_crop"].value_or(input.eval_crop);
  } catch (const toml::parse_error&) {
  }
  return input;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  ODY_CHECK(!std::filesystem::is_directory(path, ec),
            "config file '" + path + "' is a folder", "name a .toml file, e.g. configs/quickstart.toml");
  std::ifstream in(path);
  ODY_CHECK(in.good(), "cannot read config file '" + path + "'",
            "check the path; configs/quickstart.toml is an example");
  std::stringstream ss;
  ss << in.rdbuf();
  ODY_CHECK(!in.bad(), "cannot read config file '" + path + "'", "");
  return parse_config(ss.str(), path, overrides);
}

std::string to_toml(const Config& config) {
  std::ostringstream os;
  std::string section;
  for (const auto& f : schema()) {
    if (f.section != section) {
      os << (section.empty() ? "" : "\n") << "[" << f.section << "]\n";
      section = f.section;
    }
    os << f.key << " = " << f.get(config) << "\n";
  }
  return os.str();
}

namespace {
// "section.key" -> value text of a config written by to_toml ("[section]" lines, "key = value").
std::map<std::string, std::string> flat_values(const std::string& toml_text) {
  std::map<std::string, std::string> out;
  std::istringstream in(toml_text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
    } else if (const size_t eq = line.find(" = "); eq != std::string::npos) {
      out[section + "." + line.substr(0, eq)] = line.substr(eq + 3);
    }
  }
  return out;
}
}  // namespace

std::vector<ConfigChange> config_changes(const std::string& before_toml, const std::string& after_toml) {
  const auto before = flat_values(before_toml), after = flat_values(after_toml);
  std::vector<ConfigChange> out;
  for (const auto& f : schema()) {  // in the reference's order
    const std::string key = f.name();
    auto b = before.find(key), a = after.find(key);
    const std::string bv = b == before.end() ? "" : b->second, av = a == after.end() ? "" : a->second;
    if (bv != av) out.push_back({key, bv, av});
  }
  return out;
}

std::string config_reference() {
  Config defaults;
  std::ostringstream os;
  for (const auto& f : schema()) {
    std::string choices;
    for (const auto& c : f.choices) choices += (choices.empty() ? " (one of " : ", ") + quote_string(c);
    os << "| `" << f.name() << "` | " << f.type << " | `" << f.get(defaults) << "` | " << f.doc
       << (choices.empty() ? "" : choices + ")") << " |\n";
  }
  return os.str();
}

}  // namespace odyssey
