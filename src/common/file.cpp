#include "common/file.h"

#include <fstream>
#include <iterator>

#include "common/error.h"

namespace odyssey {

std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  ODY_CHECK(in.good(), "cannot open " + what + " '" + path + "'", "");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace odyssey
