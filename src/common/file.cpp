#include "common/file.h"

#include <fcntl.h>
#include <unistd.h>

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

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  ODY_CHECK(fd >= 0, "cannot open '" + path + "' to sync it", "");
  int rc = ::fsync(fd);
  ::close(fd);
  ODY_CHECK(rc == 0, "fsync of '" + path + "' failed", "is the disk full or failing?");
}

void write_text_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      ODY_CHECK(out.good(), "cannot write '" + tmp + "'", "is the disk full or the folder read-only?");
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

}  // namespace odyssey
