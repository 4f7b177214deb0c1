#include "fuse/mount_table.h"

#include <fstream>
#include <sstream>

namespace e4fs {
namespace {

bool IsOctal(char c, char highest) { return c >= '0' && c <= highest; }

}  // namespace

std::string ReadProcText(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string UnescapeMountField(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() &&
        IsOctal(field[i + 1], '3') && IsOctal(field[i + 2], '7') &&
        IsOctal(field[i + 3], '7')) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 +
                                      (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

}  // namespace e4fs
