// Text helpers: escaping for double-quoted strings (valid in both JSON and TOML).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace odyssey {

// Escapes backslash, double quote and control characters; the result goes between double quotes.
std::string escape_quoted(const std::string& s);

// The value of a command-line option as a positive integer; throws odyssey::Error naming the
// option otherwise.
int64_t positive_int_option(const std::string& option, const std::string& value);
// The same for a non-negative integer (0 allowed).
int64_t nonnegative_int_option(const std::string& option, const std::string& value);

// Whether the command line asks for help (--help or -h anywhere): the bench binaries print their
// usage and exit 0 instead of running (one wrote 250 MB of checkpoints for --help).
bool help_requested(int argc, char** argv);

// "--name value" pairs of a command line (argv[1..]), every name one of `names`; throws
// UsageError naming `program` and the option for an unknown option or one without its value.
std::map<std::string, std::string> option_pairs(int argc, char** argv,
                                                const std::vector<std::string>& names,
                                                const std::string& program);

// "text" with escapes.
inline std::string quote_string(const std::string& s) { return "\"" + escape_quoted(s) + "\""; }

// The non-empty items of text between separators ("a,,b" -> {"a", "b"}), and the reverse.
std::vector<std::string> split(const std::string& text, char sep);
std::string join(const std::vector<std::string>& items, char sep);

}  // namespace odyssey
