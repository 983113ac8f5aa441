// Error: the one exception type users see, with the call site and a hint they can act on.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace odyssey {

// An error a user can cause or fix (bad config, missing file, corrupt shard).
// what() is the full message: "<message> [hint: <hint>] (at file:line)".
class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const std::string& hint, const char* file, int line)
      : std::runtime_error(compose(message, hint, file, line)), message_(message), hint_(hint) {}

  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }

 private:
  static std::string compose(const std::string& m, const std::string& h, const char* file,
                             int line) {
    std::ostringstream os;
    os << m;
    if (!h.empty()) os << "\n  hint: " << h;
    os << "\n  (at " << file << ":" << line << ")";
    return os.str();
  }
  std::string message_;
  std::string hint_;
};

// A bad command line (unknown option, missing or malformed argument): exit code 1, not 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Builds a message from stream pieces: ODY_MSG("shard " << path << " has " << n).
#define ODY_MSG(stream_expr)   \
  ([&]() {                     \
    std::ostringstream os_;    \
    os_ << stream_expr;        \
    return os_.str();          \
  }())

// Throws an odyssey::Error with the call site.
#define ODY_FAIL(msg, hint) throw ::odyssey::Error((msg), (hint), __FILE__, __LINE__)

// Throws when cond is false.
#define ODY_CHECK(cond, msg, hint)  \
  do {                              \
    if (!(cond)) ODY_FAIL(msg, hint); \
  } while (0)

// The same for a bad command line (UsageError).
#define ODY_USAGE_FAIL(msg, hint) throw ::odyssey::UsageError((msg), (hint), __FILE__, __LINE__)
#define ODY_USAGE_CHECK(cond, msg, hint) \
  do {                                   \
    if (!(cond)) ODY_USAGE_FAIL(msg, hint); \
  } while (0)

// fn(), with an Error from it re-thrown as `context: <its message>` (the key or file its input
// came from); an empty context adds nothing.
template <typename F>
auto with_context(const std::string& context, F&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    if (context.empty()) throw;
    throw Error(context + ": " + e.message(), e.hint(), __FILE__, __LINE__);
  }
}

// fn(), with an Error from it re-thrown as a UsageError: a command-line value checked by a parser
// that also serves config files (exit code 1, not 2).
template <typename F>
auto as_usage(F&& fn) {
  try {
    return fn();
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.message(), e.hint(), __FILE__, __LINE__);
  }
}

}  // namespace odyssey
