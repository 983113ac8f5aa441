#include "common/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/error.h"

namespace odyssey {

std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  ODY_CHECK(in.good(), "cannot open " + what + " '" + path + "'", "");
  try {  // libstdc++ throws std::ios_base::failure from a read error (EIO, a folder)
    std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
    ODY_CHECK(!in.bad(), "cannot read " + what + " '" + path + "'", "");
    return bytes;
  } catch (const std::ios_base::failure& e) {
    ODY_FAIL("cannot read " + what + " '" + path + "': " + e.what(), "");
  }
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec) && !ec;
}

void check_writable_output(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  ODY_CHECK(!fs::is_directory(path, ec), what + " '" + path + "' is a folder", "name a file");
  const fs::path dir = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : fs::path(".");
  ODY_CHECK(fs::is_directory(dir, ec), what + " '" + path + "': folder '" + dir.string() + "' does not exist",
            "create it first");
  ODY_CHECK(::access(dir.c_str(), W_OK) == 0,
            what + " '" + path + "': cannot write in folder '" + dir.string() + "': " + std::strerror(errno), "");
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  ODY_CHECK(fd >= 0, "cannot open '" + path + "' to sync it", "");
  int rc = ::fsync(fd);
  ::close(fd);
  ODY_CHECK(rc == 0, "fsync of '" + path + "' failed", "is the disk full or failing?");
}

void write_text_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  // A temporary of this host, process and call: two writers of one path (a `trainer report` on a
  // login node against a live run's folder on shared storage, and the run's own end-of-run
  // report) each rename a whole file of their own.
  static std::atomic<uint64_t> calls{0};
  static const std::string host = [] {
    char name[256] = {};
    return ::gethostname(name, sizeof name - 1) == 0 && name[0] ? std::string(name) : std::string("host");
  }();
  const std::string tmp =
      path + "." + host + "-" + std::to_string(::getpid()) + "-" + std::to_string(calls++) + ".tmp";
  std::error_code ec;
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      ODY_CHECK(out.good(), "cannot write '" + tmp + "'", "is the disk full or the folder read-only?");
      out.close();  // checked: close(2) may report a write-back error (NFS, quotas) first
      ODY_CHECK(!out.fail(), "cannot write '" + tmp + "' (its close failed)",
                "is the disk full, over quota or the folder read-only?");
    }
    fsync_path(tmp, false);
    fs::rename(tmp, path, ec);
    ODY_CHECK(!ec, "cannot replace '" + path + "': " + ec.message(), "");
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  const fs::path dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), true);
}

ExclusiveFileLock::~ExclusiveFileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

ExclusiveFileLock::Outcome ExclusiveFileLock::try_lock(const std::string& path, std::string* holder) {
  // A teammate's lock file in a shared folder may be read-only to us: flock works on that too.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
  if (fd < 0 && errno == EACCES) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const int open_err = errno;
  ODY_CHECK(fd >= 0, "cannot open lock file '" + path + "': " + std::strerror(open_err),
            "is the folder writable?");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      std::string text(256, '\0');
      const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
      text.resize(n > 0 ? static_cast<size_t>(n) : 0);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
      *holder = text.empty() ? "unknown holder" : text;
      ::close(fd);
      return Outcome::kBusy;
    }
    *holder = std::strerror(err);
    ::close(fd);
    return Outcome::kUnsupported;
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const std::string me = std::string("host ") + host + ", pid " + std::to_string(::getpid()) + "\n";
  // The holder's name, for the next one's message (held whether or not it could be written).
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, me.data(), me.size(), 0);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  return Outcome::kHeld;
}

}  // namespace odyssey
