// e4 mkfs: makes an ext2/ext3/ext4 filesystem in an image file or on a block
// device, optionally filled from a directory tree, without root (see
// ext4/mkfs/mkfs.h for what it writes).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ext4/errno_status.h"
#include "ext4/format/endian.h"
#include "ext4/format/superblock.h"
#include "ext4/io/block_device.h"
#include "ext4/mkfs/layout.h"
#include "ext4/mkfs/mkfs.h"
#include "ext4/mkfs/options.h"
#include "ext4/mkfs/populate.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"

namespace e4cli {
namespace {

namespace mkfs = ::ext4::mkfs;

constexpr char kUsage[] =
    "Usage: e4 mkfs [OPTIONS] IMAGE [SIZE]\n"
    "\n"
    "Makes an ext4 (or ext2/ext3) filesystem in IMAGE: a file, created when\n"
    "missing and otherwise cut to SIZE, or a block device. No root needed.\n"
    "SIZE is in bytes, with an optional K, M, G or T suffix (powers of 1024);\n"
    "without it the whole of IMAGE is used.\n"
    "\n"
    "Options:\n"
    "  -d DIR          copy the tree at DIR into the new filesystem\n"
    "  -t TYPE         ext2, ext3 or ext4 (the default): the starting "
    "features\n"
    "  -O FEATURES     turn features on, or off with ^ (as mke2fs -O), e.g.\n"
    "                  -O ^metadata_csum,^64bit or -O inline_data\n"
    "  -b BLOCK_SIZE   1024, 2048, 4096 (the default) ... 65536\n"
    "  -I INODE_SIZE   bytes per inode: 128, 256 (the default) ... block size\n"
    "  -i RATIO        one inode per RATIO bytes (default 16384)\n"
    "  -N COUNT        this many inodes (at least)\n"
    "  -m PERCENT      blocks reserved for root (default 5)\n"
    "  -J size=MIB     journal size in MiB (default: as mke2fs picks it)\n"
    "  -L LABEL        volume label (up to 16 bytes)\n"
    "  -U UUID         filesystem UUID (default: random)\n"
    "  -E OPTIONS      root_owner[=UID:GID], hash_seed=UUID (comma "
    "separated)\n"
    "  -F              overwrite an existing filesystem\n"
    "  -q              print nothing but errors\n"
    "  -h, --help      this help\n"
    "\n"
    "SOURCE_DATE_EPOCH, when set, is the creation time; with -U and\n"
    "-E hash_seed= the image (without -d) is then the same on every run.\n";

const Command kMkfs("mkfs", kUsage);

std::optional<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return std::nullopt;
  unsigned shift = 0;
  switch (text.back()) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    case 't':
    case 'T':
      shift = 40;
      break;
    default:
      break;
  }
  if (shift != 0) text.remove_suffix(1);
  uint64_t value = 0;
  if (text.empty() ||
      !absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &value)) {
    return std::nullopt;
  }
  if (shift != 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  return absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &out);
}

struct Args {
  mkfs::MkfsOptions options;
  std::string image;
  std::optional<uint64_t> size;
  std::string source_dir;
  bool force = false;
  bool quiet = false;
};

// Parses argv into `args`: an exit code to stop with (after --help or a
// usage error), or nullopt.
std::optional<int> ParseArgs(int argc, char** argv, Args& args) {
  std::string type = "ext4";
  std::vector<std::string> feature_lists;
  std::optional<uint64_t> journal_mib;
  std::vector<std::string> operands;
  mkfs::MkfsOptions& o = args.options;
  auto on_option = [&](int code, const char* arg) -> std::optional<int> {
    const std::string value = arg != nullptr ? arg : "";
    auto bad = [&] {
      return kMkfs.UsageError(absl::StrCat("invalid value '", value, "' for -",
                                           std::string(1, char(code))));
    };
    switch (code) {
      case 'h':
        return kMkfs.Help();
      case 'F':
        args.force = true;
        break;
      case 'q':
        args.quiet = true;
        break;
      case 'd':
        args.source_dir = value;
        break;
      case 't':
        type = value;
        break;
      case 'O':
        feature_lists.push_back(value);
        break;
      case 'b':
        if (!ParseNumber(value, o.block_size)) return bad();
        break;
      case 'I':
        if (!ParseNumber(value, o.inode_size)) return bad();
        break;
      case 'i':
        if (!ParseNumber(value, o.inode_ratio)) return bad();
        break;
      case 'N':
        if (!ParseNumber(value, o.inode_count) || o.inode_count == 0) {
          return bad();
        }
        break;
      case 'm':
        if (!absl::SimpleAtod(value, &o.reserved_percent)) return bad();
        break;
      case 'J': {
        uint64_t mib = 0;
        if (!absl::StartsWith(value, "size=") ||
            !ParseNumber(std::string_view(value).substr(5), mib) || mib == 0 ||
            mib > (uint64_t{1} << 30)) {
          return kMkfs.UsageError(absl::StrCat("invalid journal option '",
                                               value, "' (want -J size=MIB)"));
        }
        journal_mib = mib;
        break;
      }
      case 'L':
        o.label = value;
        break;
      case 'U': {
        if (value == "random") {
          o.uuid = mkfs::RandomUuid();
          break;
        }
        auto uuid = mkfs::ParseUuid(value);
        if (!uuid.ok())
          return kMkfs.UsageError(std::string(uuid.status().message()));
        o.uuid = *uuid;
        break;
      }
      case 'E':
        for (absl::string_view item :
             absl::StrSplit(value, ',', absl::SkipEmpty())) {
          if (item == "root_owner") {
            o.root_uid = getuid();
            o.root_gid = getgid();
          } else if (absl::StartsWith(item, "root_owner=")) {
            std::vector<std::string> ids = absl::StrSplit(item.substr(11), ':');
            if (ids.size() != 2 || !ParseNumber(ids[0], o.root_uid) ||
                !ParseNumber(ids[1], o.root_gid)) {
              return kMkfs.UsageError(absl::StrCat("invalid extended option '",
                                                   std::string(item), "'"));
            }
          } else if (absl::StartsWith(item, "hash_seed=")) {
            auto seed = mkfs::ParseUuid(
                std::string_view(item.data() + 10, item.size() - 10));
            if (!seed.ok())
              return kMkfs.UsageError(std::string(seed.status().message()));
            o.hash_seed = *seed;
          } else {
            return kMkfs.UsageError(absl::StrCat("unknown extended option '",
                                                 std::string(item), "'"));
          }
        }
        break;
      default:
        return kMkfs.UsageError(
            absl::StrCat("unknown option -", std::string(1, char(code))));
    }
    return std::nullopt;
  };
  if (std::optional<int> stop =
          kMkfs.ParseOptions(argc, argv, "hFqd:t:O:b:I:i:N:m:J:L:U:E:", {},
                             on_option, &operands)) {
    return stop;
  }
  if (operands.empty()) return kMkfs.UsageError("IMAGE is missing");
  if (operands.size() > 2) {
    return kMkfs.UsageError(
        absl::StrCat("unexpected argument '", operands[2], "'"));
  }
  args.image = operands[0];
  if (operands.size() == 2) {
    args.size = ParseSize(operands[1]);
    if (!args.size || *args.size == 0) {
      return kMkfs.UsageError(absl::StrCat("invalid size '", operands[1], "'"));
    }
  }
  auto features = mkfs::FeaturesForType(type);
  if (!features.ok())
    return kMkfs.UsageError(std::string(features.status().message()));
  o.features = *features;
  for (const std::string& list : feature_lists) {
    absl::Status applied = mkfs::ApplyFeatureList(list, o.features);
    if (!applied.ok()) return kMkfs.UsageError(std::string(applied.message()));
  }
  if (journal_mib) {
    if (!(o.features.compat & ext4::format::kCompatHasJournal)) {
      return kMkfs.UsageError("-J needs the has_journal feature");
    }
    if (o.block_size == 0) return kMkfs.UsageError("invalid block size 0");
    const uint64_t blocks = (*journal_mib << 20) / o.block_size;
    if (blocks > UINT32_MAX)
      return kMkfs.UsageError("the journal is too large");
    o.journal_blocks = static_cast<uint32_t>(blocks);
  }
  return std::nullopt;
}

// Opens (or creates) the image and prepares it: a regular file is cut to
// the size, so that it reads as zeros and mkfs need not write them.
absl::StatusOr<std::unique_ptr<ext4::io::BlockDevice>> OpenImage(Args& args) {
  const std::string& path = args.image;
  struct stat st;
  const bool exists = stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) {
    return ext4::ErrnoError(
        errno, absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return ext4::ErrnoError(
        EINVAL, absl::StrCat(path, " is neither a file nor a block device"));
  }
  const bool regular = !exists || S_ISREG(st.st_mode);
  if (regular && !args.size) {
    if (!exists || st.st_size == 0) {
      return ext4::ErrnoError(EINVAL,
                              absl::StrCat("SIZE is needed to make ", path));
    }
    args.size = static_cast<uint64_t>(st.st_size);
  }
  const int fd =
      open(path.c_str(), O_RDWR | O_CLOEXEC | (exists ? 0 : O_CREAT), 0666);
  if (fd < 0) {
    return ext4::ErrnoError(
        errno, absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  auto fail = [&](int err, const std::string& what) {
    close(fd);
    if (!exists) unlink(path.c_str());
    return ext4::ErrnoError(
        err, absl::StrCat(what, " ", path, ": ", std::strerror(err)));
  };
  // The lock first: an image in use must not be touched at all.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return fail(errno, "cannot lock (is it mounted?)");
  }
  if (exists && !args.force) {
    uint8_t magic[2] = {};
    const off_t at = ext4::format::kSuperblockOffset + 0x38;
    if (pread(fd, magic, sizeof(magic), at) == sizeof(magic) &&
        ext4::format::Le16(magic, 0) == ext4::format::kSuperblockMagic) {
      close(fd);
      return ext4::ErrnoError(
          EEXIST, absl::StrCat(path,
                               " already holds an ext2/ext3/ext4 filesystem; "
                               "-F overwrites it"));
    }
  }
  if (regular) {
    if (ftruncate(fd, 0) != 0 ||
        ftruncate(fd, static_cast<off_t>(*args.size)) != 0) {
      return fail(errno, "cannot resize");
    }
    args.options.assume_zeroed = true;
  }
  return ext4::io::FileDeviceFromFd(fd, /*read_only=*/false);
}

void PrintSummary(const Args& args, const mkfs::Geometry& g) {
  std::printf("Creating filesystem with %llu %uk blocks and %llu inodes\n",
              static_cast<unsigned long long>(g.blocks_count),
              g.block_size / 1024,
              static_cast<unsigned long long>(g.inodes_count()));
  std::printf("Filesystem UUID: %s\n",
              mkfs::FormatUuid(args.options.uuid).c_str());
  std::string backups;
  uint32_t count = 0;
  for (uint32_t group = 1; group < g.group_count; ++group) {
    if (!g.has_superblock(group)) continue;
    if (++count <= 32) {
      absl::StrAppend(&backups, backups.empty() ? "" : ", ",
                      g.group_first_block(group));
    }
  }
  if (count > 32) absl::StrAppend(&backups, ", ... (", count, " in all)");
  if (!backups.empty()) {
    std::printf("Superblock backups stored on blocks: %s\n", backups.c_str());
  }
  if (g.journal_blocks != 0) {
    std::printf("Journal: %u blocks\n", g.journal_blocks);
  }
  std::printf("Features: %s\n", mkfs::FeatureSetNames(g.features).c_str());
  for (const std::string& note : g.notes) {
    std::printf("Note: %s\n", note.c_str());
  }
}

}  // namespace

int RunMkfs(int argc, char** argv) {
  Args args;
  if (std::optional<int> stop = ParseArgs(argc, argv, args)) return *stop;
  // The library's messages name the path or value at fault already.
  auto fail = [](const absl::Status& status) {
    return kMkfs.Fail(status.message().empty() ? StatusText(status)
                                               : std::string(status.message()));
  };
  if (!args.source_dir.empty()) {
    struct stat st;
    if (stat(args.source_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return kMkfs.Fail(absl::StrCat(args.source_dir, " is not a directory"));
    }
  }
  // The options are checked before the image is touched.
  if (args.size) {
    mkfs::MkfsOptions probe = args.options;
    probe.size_bytes = *args.size;
    auto plan = mkfs::PlanFilesystem(probe, *args.size);
    if (!plan.ok()) return fail(plan.status());
  }
  auto device = OpenImage(args);
  if (!device.ok()) return fail(device.status());
  args.options.size_bytes = args.size.value_or(0);  // 0: the whole device
  auto plan = mkfs::PlanFilesystem(args.options, (*device)->Size());
  if (!plan.ok()) return fail(plan.status());
  if (args.options.uuid == std::array<uint8_t, 16>{}) {
    args.options.uuid = mkfs::RandomUuid();
  }
  if (!args.quiet) PrintSummary(args, *plan);
  absl::Status made = args.source_dir.empty()
                          ? mkfs::MakeFilesystem(**device, args.options)
                          : mkfs::MakeFilesystemFromDirectory(
                                **device, args.options, args.source_dir);
  if (!made.ok()) return fail(made);
  absl::Status flushed = (*device)->Flush();
  if (!flushed.ok()) return fail(flushed);
  if (!args.quiet && !args.source_dir.empty()) {
    std::printf("Copied %s\n", args.source_dir.c_str());
  }
  return kExitOk;
}

}  // namespace e4cli
