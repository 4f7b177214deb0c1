// `e4 check IMAGE`: the engine's read-only consistency check, with e2fsck's
// exit codes as `e2fsck -fn` gives them: 0 clean, 4 problems found (and left
// as they are), 8 an operational error (the image cannot be opened or read,
// or holds no ext2/ext3/ext4 filesystem e4fs can check), 16 a usage error.
// Nothing is ever corrected, so 1 and 2 are never returned.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "ext4/check/checker.h"
#include "ext4/io/block_device.h"
#include "tools/e4/commands.h"

namespace e4cli {
namespace {

constexpr int kExitClean = 0;
constexpr int kExitUncorrected = 4;
constexpr int kExitOperational = 8;
constexpr int kExitUsage = 16;

constexpr char kUsage[] =
    "usage: e4 check [--json] [-v] IMAGE\n"
    "\n"
    "Checks the ext2/ext3/ext4 filesystem in IMAGE without changing it:\n"
    "the superblock and group descriptors, every inode in use (checksums,\n"
    "extent trees and block maps, sizes, extended attributes), every\n"
    "directory (entries, checksums, htree indexes), that every directory is\n"
    "reachable from the root, link counts, and the block and inode bitmaps\n"
    "with the groups' counts. A journal that needs recovery is reported, not\n"
    "replayed.\n"
    "\n"
    "  --json         print the report as one JSON object\n"
    "  -v, --verbose  name each problem's kind and number, and sum up the\n"
    "                 kinds found\n"
    "  -n, -f         accepted and ignored, as with e2fsck -fn\n"
    "  -h, --help     print this help\n"
    "\n"
    "Exit status, as e2fsck's: 0 clean; 4 problems found (left uncorrected);\n"
    "8 operational error (cannot open or read IMAGE, not ext2/3/4); 16 usage\n"
    "error.\n";

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          // Non-ASCII bytes (names are not always UTF-8) are escaped one by
          // one, so that the output is always valid JSON.
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "e4 check: %s\nTry 'e4 check --help'.\n",
               message.c_str());
  return kExitUsage;
}

int OperationalError(const std::string& image, const std::string& message,
                     bool json) {
  // Messages from opening the file name it already.
  if (message.rfind(image + ":", 0) == 0) {
    std::fprintf(stderr, "e4 check: %s\n", message.c_str());
  } else {
    std::fprintf(stderr, "e4 check: %s: %s\n", image.c_str(), message.c_str());
  }
  if (json) {
    std::printf("{\"image\":%s,\"exit_code\":%d,\"error\":%s}\n",
                JsonString(image).c_str(), kExitOperational,
                JsonString(message).c_str());
  }
  return kExitOperational;
}

}  // namespace

int RunCheck(int argc, char** argv) {
  bool json = false;
  bool verbose = false;
  std::string image;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!options_done && arg.size() > 1 && arg[0] == '-') {
      if (arg == "--") {
        options_done = true;
      } else if (arg == "--json") {
        json = true;
      } else if (arg == "-v" || arg == "--verbose") {
        verbose = true;
      } else if (arg == "-n" || arg == "-f" || arg == "-fn" || arg == "-nf") {
        // e2fsck's "force, answer no": what this check always does.
      } else if (arg == "-h" || arg == "--help") {
        std::fputs(kUsage, stdout);
        return kExitClean;
      } else {
        return UsageError(
            absl::StrCat("unknown option '", std::string(arg), "'"));
      }
      continue;
    }
    if (!image.empty()) {
      return UsageError(absl::StrCat("more than one image ('", image, "' and '",
                                     std::string(arg), "')"));
    }
    image = std::string(arg);
  }
  if (image.empty()) return UsageError("no image given");

  const auto start = std::chrono::steady_clock::now();
  auto device = ext4::io::OpenFileDevice(image, /*read_only=*/true);
  if (!device.ok()) {
    return OperationalError(image, std::string(device.status().message()),
                            json);
  }
  auto report = ext4::check::CheckFilesystem(**device);
  if (!report.ok()) {
    return OperationalError(image, std::string(report.status().message()),
                            json);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  const int code = report->problems.empty() ? kExitClean : kExitUncorrected;

  if (json) {
    std::string out = absl::StrCat(
        "{\"image\":", JsonString(image), ",\"exit_code\":", code,
        ",\"clean\":", report->problems.empty() ? "true" : "false",
        ",\"inodes_checked\":", report->inodes_checked,
        ",\"blocks_checked\":", report->blocks_checked, ",\"problems\":[");
    for (size_t i = 0; i < report->problems.size(); ++i) {
      const ext4::check::Problem& p = report->problems[i];
      absl::StrAppend(&out, i == 0 ? "" : ",", "{\"kind\":", JsonString(p.kind),
                      ",\"message\":", JsonString(p.message),
                      ",\"number\":", p.inode_or_block, "}");
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return code;
  }

  std::map<std::string, size_t> kinds;
  for (const ext4::check::Problem& p : report->problems) {
    ++kinds[p.kind];
    if (verbose) {
      std::printf("%s: %s [%s %llu]\n", image.c_str(), p.message.c_str(),
                  p.kind.c_str(),
                  static_cast<unsigned long long>(p.inode_or_block));
    } else {
      std::printf("%s: %s: %s\n", image.c_str(), p.kind.c_str(),
                  p.message.c_str());
    }
  }
  if (verbose && !kinds.empty()) {
    std::printf("%s: problems by kind:", image.c_str());
    for (const auto& [kind, n] : kinds) std::printf(" %s=%zu", kind.c_str(), n);
    std::printf("\n");
  }
  if (code == kExitClean) {
    std::printf("%s: clean, %llu inodes and %llu blocks in use\n",
                image.c_str(),
                static_cast<unsigned long long>(report->inodes_checked),
                static_cast<unsigned long long>(report->blocks_checked));
  } else {
    std::printf(
        "%s: %zu problem%s found and left uncorrected (%llu inodes and %llu "
        "blocks in use)\n",
        image.c_str(), report->problems.size(),
        report->problems.size() == 1 ? "" : "s",
        static_cast<unsigned long long>(report->inodes_checked),
        static_cast<unsigned long long>(report->blocks_checked));
  }
  if (verbose) std::printf("%s: checked in %.3f s\n", image.c_str(), seconds);
  return code;
}

}  // namespace e4cli
