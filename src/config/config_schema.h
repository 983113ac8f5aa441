// The config's schema: every key with its section, type, range or choices, documentation, and
// how it is read from TOML and printed (config.cpp parses, prints and documents through it).
#pragma once

#include <toml++/toml.h>

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"

namespace odyssey {

// One config key: where it lives, what it accepts, how to read and print it.
struct Field {
  std::string section, key, type, doc;
  std::vector<std::string> choices;  // allowed values of a string key (empty = any)
  std::function<void(Config&, const toml::node&, const std::string& where)> set;
  std::function<std::string(const Config&)> get;
  std::string name() const { return section + "." + key; }
};

// Every key, in reference order.
const std::vector<Field>& schema();
// The key named "section.key", or nullptr.
const Field* find_field(const std::string& name);

}  // namespace odyssey
