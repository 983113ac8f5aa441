// Whole files: reads for the converters, and small text files written complete or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace odyssey {

// The bytes of path; throws odyssey::Error "cannot open <what> '<path>'" when it cannot be opened.
std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& what);

// Whether two paths name one existing file (links and relative spellings included).
bool same_file(const std::string& a, const std::string& b);

// Fails, naming what and path, when an output file could not be written there (a folder by that
// name, a folder that does not exist or is not writable): checked before hours of work, not after.
void check_writable_output(const std::string& path, const std::string& what);

// fsync of a file or a folder (directory = true: its entries, e.g. after a rename); throws
// odyssey::Error naming the path when it fails.
void fsync_path(const std::string& path, bool directory);

// Replaces path with text atomically and durably: path.HOST-PID-N.tmp written and fsync'd, renamed over
// path, the folder fsync'd. Throws naming the file on failure: before the rename path is
// untouched and no .tmp is left; a failing fsync of the folder (after it) leaves path replaced
// but perhaps not yet durable.
void write_text_atomically(const std::string& path, const std::string& text);

// An exclusive advisory lock (flock(2), which NFS carries across nodes) on a file, held until
// destruction or the process's end (a crash frees it), the holder's "host H, pid P" written in it.
class ExclusiveFileLock {
 public:
  enum class Outcome { kHeld, kBusy, kUnsupported };
  ExclusiveFileLock() = default;
  ~ExclusiveFileLock();
  ExclusiveFileLock(const ExclusiveFileLock&) = delete;
  ExclusiveFileLock& operator=(const ExclusiveFileLock&) = delete;
  // Takes the lock on path (created if missing) without waiting. kBusy: another process (or
  // another lock in this one) holds it, *holder = what it wrote; kUnsupported: the file system
  // refuses flock (Lustre without -o flock), *holder = why. Throws Error naming path when the
  // file cannot be opened.
  Outcome try_lock(const std::string& path, std::string* holder);

 private:
  int fd_ = -1;
};

}  // namespace odyssey
