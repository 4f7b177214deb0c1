#include "tools/e4/mode_spec.h"

#include <sys/stat.h>

namespace e4cli {

std::optional<uint32_t> ApplyModeSpec(std::string_view spec, uint32_t mode) {
  if (spec.empty()) return std::nullopt;
  if (spec[0] >= '0' && spec[0] <= '7') {
    if (spec.size() > 4) return std::nullopt;
    uint32_t value = 0;
    for (char c : spec) {
      if (c < '0' || c > '7') return std::nullopt;
      value = value * 8 + static_cast<uint32_t>(c - '0');
    }
    return value;
  }
  uint32_t perms = mode & 07777;
  const bool is_dir = S_ISDIR(mode);
  size_t i = 0;
  while (true) {
    // Who: u g o a. The bits of each class within a 9-bit rwx mask, and
    // the special bits that go with them.
    uint32_t who = 0;
    for (; i < spec.size(); ++i) {
      const char c = spec[i];
      if (c == 'u') {
        who |= 04700;
      } else if (c == 'g') {
        who |= 02070;
      } else if (c == 'o') {
        who |= 01007;
      } else if (c == 'a') {
        who |= 07777;
      } else {
        break;
      }
    }
    if (who == 0) who = 07777;
    // An operator must follow.
    if (i >= spec.size() ||
        (spec[i] != '+' && spec[i] != '-' && spec[i] != '=')) {
      return std::nullopt;
    }
    while (i < spec.size() &&
           (spec[i] == '+' || spec[i] == '-' || spec[i] == '=')) {
      const char op = spec[i++];
      uint32_t bits = 0;
      if (i < spec.size() &&
          (spec[i] == 'u' || spec[i] == 'g' || spec[i] == 'o')) {
        // Copy another class's current rwx bits.
        const int shift = spec[i] == 'u' ? 6 : spec[i] == 'g' ? 3 : 0;
        const uint32_t rwx = (perms >> shift) & 7;
        bits = rwx * 0111;
        ++i;
      } else {
        for (; i < spec.size(); ++i) {
          const char c = spec[i];
          if (c == 'r') {
            bits |= 0444;
          } else if (c == 'w') {
            bits |= 0222;
          } else if (c == 'x') {
            bits |= 0111;
          } else if (c == 'X') {
            if (is_dir || (perms & 0111)) bits |= 0111;
          } else if (c == 's') {
            bits |= 06000;
          } else if (c == 't') {
            bits |= 01000;
          } else {
            break;
          }
        }
      }
      bits &= who;
      if (op == '+') {
        perms |= bits;
      } else if (op == '-') {
        perms &= ~bits;
      } else {
        // '=' clears the class's rwx (and its special bit), then sets.
        perms = (perms & ~(who & 07777)) | bits;
      }
    }
    if (i == spec.size()) return perms;
    if (spec[i] != ',') return std::nullopt;
    ++i;
    if (i == spec.size()) return std::nullopt;
  }
}

}  // namespace e4cli
