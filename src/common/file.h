// Whole-file reads for the converters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace odyssey {

// The bytes of path; throws odyssey::Error "cannot open <what> '<path>'" when it cannot be opened.
std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& what);

}  // namespace odyssey
