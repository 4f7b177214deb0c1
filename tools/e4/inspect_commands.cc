// e4 ls, e4 stat and e4 cat: what a file or directory holds, read through
// the engine's public API on a read-only mount (stat adds the raw inode's
// flags and fields).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/inode.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"
#include "tools/e4/image_path.h"
#include "tools/e4/json.h"
#include "tools/e4/raw_image.h"
#include "tools/e4/text_format.h"

namespace e4cli {
namespace {

namespace format = ext4::format;

// Writes all of `data` to stdout; false when stdout fails.
bool WriteOut(const void* data, size_t size) {
  return size == 0 || std::fwrite(data, 1, size, stdout) == size;
}

void TimeJson(JsonWriter& j, std::string_view key, const ext4::Timestamp& t) {
  j.Key(key);
  j.BeginObject();
  j.Field("sec", t.sec);
  j.Field("nsec", t.nsec);
  j.EndObject();
}

// ---------------------------------------------------------------- ls ----

constexpr char kLsUsage[] =
    "Usage: e4 ls [OPTIONS] IMAGE:/path...\n"
    "Lists directories inside an image, sorted by name (byte order); for a\n"
    "path that is not a directory, lists that entry. A final symlink is\n"
    "listed itself unless the path ends with '/'.\n"
    "\n"
    "  -l          long format: mode, links, uid, gid, size (major, minor for\n"
    "              devices), mtime (local time zone, TZ), name -> target\n"
    "  -i          inode numbers first\n"
    "  -a          include . and ..\n"
    "  -d          list directories themselves, not what they hold\n"
    "  -U          directory order instead of sorting\n"
    "      --json  JSON: {\"path\", \"ino\", \"entries\": [{\"name\", "
    "\"ino\",\n"
    "              \"type\", \"mode\", \"nlink\", \"uid\", \"gid\", \"size\",\n"
    "              \"mtime\", \"target\", \"rdev\"}]} (an array of them for\n"
    "              several paths)\n"
    "  -h, --help  this help\n";

struct LsEntry {
  std::string name;
  ext4::InodeNumber ino = 0;
  ext4::Attributes attr;
  std::string target;  // symlinks
};

struct LsOptions {
  bool long_format = false;
  bool inodes = false;
  bool all = false;
  bool directory = false;
  bool unsorted = false;
  bool json = false;
};

absl::Status FillEntry(ext4::Filesystem& fs, LsEntry& e, bool need_attr) {
  if (!need_attr) return absl::OkStatus();
  E4_ASSIGN_OR_RETURN(e.attr, fs.GetAttr(e.ino));
  if (S_ISLNK(e.attr.mode)) {
    E4_ASSIGN_OR_RETURN(e.target, fs.ReadLink(e.ino));
  }
  return absl::OkStatus();
}

void PrintLong(const std::vector<LsEntry>& entries, const LsOptions& opt) {
  size_t w_ino = 0, w_nlink = 0, w_uid = 0, w_gid = 0, w_size = 0;
  auto size_text = [](const ext4::Attributes& a) {
    if (S_ISCHR(a.mode) || S_ISBLK(a.mode)) {
      return absl::StrCat(a.rdev_major, ", ", a.rdev_minor);
    }
    return absl::StrCat(a.size);
  };
  for (const LsEntry& e : entries) {
    w_ino = std::max(w_ino, absl::StrCat(e.ino).size());
    w_nlink = std::max(w_nlink, absl::StrCat(e.attr.nlink).size());
    w_uid = std::max(w_uid, absl::StrCat(e.attr.uid).size());
    w_gid = std::max(w_gid, absl::StrCat(e.attr.gid).size());
    w_size = std::max(w_size, size_text(e.attr).size());
  }
  for (const LsEntry& e : entries) {
    std::string line;
    if (opt.inodes) {
      absl::StrAppend(&line,
                      std::string(w_ino - absl::StrCat(e.ino).size(), ' '),
                      e.ino, " ");
    }
    auto pad = [](std::string s, size_t w) {
      return std::string(w - std::min(w, s.size()), ' ') + s;
    };
    absl::StrAppend(&line, ModeString(e.attr.mode), " ",
                    pad(absl::StrCat(e.attr.nlink), w_nlink), " ",
                    pad(absl::StrCat(e.attr.uid), w_uid), " ",
                    pad(absl::StrCat(e.attr.gid), w_gid), " ",
                    pad(size_text(e.attr), w_size), " ",
                    ShortTime(e.attr.mtime), " ", e.name);
    if (S_ISLNK(e.attr.mode)) absl::StrAppend(&line, " -> ", e.target);
    line += '\n';
    WriteOut(line.data(), line.size());
  }
}

void EntryJson(JsonWriter& j, const LsEntry& e) {
  j.BeginObject();
  j.Field("name", e.name);
  j.Field("ino", e.ino);
  j.Field("type", TypeKey(e.attr.mode));
  j.Field("mode", OctalMode(e.attr.mode));
  j.Field("nlink", e.attr.nlink);
  j.Field("uid", e.attr.uid);
  j.Field("gid", e.attr.gid);
  j.Field("size", e.attr.size);
  TimeJson(j, "mtime", e.attr.mtime);
  if (S_ISLNK(e.attr.mode)) j.Field("target", e.target);
  if (S_ISCHR(e.attr.mode) || S_ISBLK(e.attr.mode)) {
    j.Key("rdev");
    j.BeginObject();
    j.Field("major", e.attr.rdev_major);
    j.Field("minor", e.attr.rdev_minor);
    j.EndObject();
  }
  j.EndObject();
}

// Lists one operand; the entries go to `out` (for JSON) or are printed.
absl::Status ListOne(ext4::Filesystem& fs, const ImagePath& where, bool follow,
                     const LsOptions& opt, JsonWriter* json, bool header) {
  E4_ASSIGN_OR_RETURN(ext4::InodeNumber ino, Resolve(fs, where.path, follow));
  E4_ASSIGN_OR_RETURN(ext4::Attributes attr, fs.GetAttr(ino));
  const bool need_attr = opt.long_format || opt.json;
  std::vector<LsEntry> entries;
  const bool list_dir = S_ISDIR(attr.mode) && !opt.directory;
  if (list_dir) {
    absl::Status inner = absl::OkStatus();
    E4_RETURN_IF_ERROR(fs.ReadDir(ino, 0, [&](const ext4::DirEntry& d) {
      if (!opt.all && (d.name == "." || d.name == "..")) return true;
      entries.push_back(LsEntry{d.name, d.ino, {}, {}});
      return true;
    }));
    if (!opt.unsorted) {
      std::sort(
          entries.begin(), entries.end(),
          [](const LsEntry& a, const LsEntry& b) { return a.name < b.name; });
    }
    for (LsEntry& e : entries) {
      absl::Status status = FillEntry(fs, e, need_attr);
      if (!status.ok()) {
        return ext4::ErrnoError(ext4::ErrnoOf(status),
                                e.name + ": " + StatusText(status));
      }
    }
  } else {
    LsEntry e{where.path, ino, attr, {}};
    E4_RETURN_IF_ERROR(FillEntry(fs, e, need_attr));
    entries.push_back(std::move(e));
  }
  if (json != nullptr) {
    json->BeginObject();
    json->Field("path", where.path);
    json->Field("ino", ino);
    json->Key("entries");
    json->BeginArray();
    for (const LsEntry& e : entries) EntryJson(*json, e);
    json->EndArray();
    json->EndObject();
    return absl::OkStatus();
  }
  if (header && list_dir) {
    std::string h = where.path + ":\n";
    WriteOut(h.data(), h.size());
  }
  if (opt.long_format) {
    PrintLong(entries, opt);
  } else {
    for (const LsEntry& e : entries) {
      std::string line =
          opt.inodes ? absl::StrCat(e.ino, " ", e.name, "\n") : e.name + "\n";
      WriteOut(line.data(), line.size());
    }
  }
  return absl::OkStatus();
}

// -------------------------------------------------------------- stat ----

constexpr char kStatUsage[] =
    "Usage: e4 stat [OPTIONS] IMAGE:/path...\n"
    "Shows an inode: type, mode, links, owner, size, blocks (512-byte units),\n"
    "times (local time zone, TZ, and seconds since the epoch), the raw\n"
    "inode's flags, xattr block, extra size and project, the symlink target\n"
    "or device numbers, and the extended attributes.\n"
    "\n"
    "  -L, --dereference  follow a final symlink\n"
    "      --json         JSON object (an array of them for several paths)\n"
    "  -h, --help         this help\n";

struct FlagName {
  uint32_t bit;
  const char* name;
};

constexpr FlagName kInodeFlags[] = {
    {format::kInodeFlagSecureRm, "secrm"},
    {format::kInodeFlagUnrm, "unrm"},
    {format::kInodeFlagCompr, "compr"},
    {format::kInodeFlagSync, "sync"},
    {format::kInodeFlagImmutable, "immutable"},
    {format::kInodeFlagAppend, "append"},
    {format::kInodeFlagNodump, "nodump"},
    {format::kInodeFlagNoatime, "noatime"},
    {format::kInodeFlagDirty, "dirty"},
    {format::kInodeFlagComprBlk, "comprblk"},
    {format::kInodeFlagNoCompr, "nocompr"},
    {format::kInodeFlagEncrypt, "encrypt"},
    {format::kInodeFlagIndex, "index"},
    {format::kInodeFlagImagic, "imagic"},
    {format::kInodeFlagJournalData, "journal_data"},
    {format::kInodeFlagNotail, "notail"},
    {format::kInodeFlagDirSync, "dirsync"},
    {format::kInodeFlagTopdir, "topdir"},
    {format::kInodeFlagHugeFile, "huge_file"},
    {format::kInodeFlagExtents, "extents"},
    {format::kInodeFlagVerity, "verity"},
    {format::kInodeFlagEaInode, "ea_inode"},
    {format::kInodeFlagDax, "dax"},
    {format::kInodeFlagInlineData, "inline_data"},
    {format::kInodeFlagProjInherit, "projinherit"},
    {format::kInodeFlagCasefold, "casefold"},
};

std::vector<std::string> FlagNames(uint32_t flags) {
  std::vector<std::string> names;
  uint32_t known = 0;
  for (const FlagName& f : kInodeFlags) {
    known |= f.bit;
    if (flags & f.bit) names.push_back(f.name);
  }
  for (int bit = 0; bit < 32; ++bit) {
    if ((flags & ~known) & (1u << bit)) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "0x%x", 1u << bit);
      names.push_back(buf);
    }
  }
  return names;
}

struct StatInfo {
  std::string path;
  ext4::InodeNumber ino = 0;
  ext4::Attributes attr;
  std::string target;
  std::optional<RawInode> raw;  // absent when the raw view failed
  std::string raw_error;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

absl::StatusOr<StatInfo> Gather(Image& image, const ImagePath& where,
                                bool follow) {
  ext4::Filesystem& fs = *image.fs;
  StatInfo s;
  E4_ASSIGN_OR_RETURN(s.ino, Resolve(fs, where.path, follow, &s.path));
  E4_ASSIGN_OR_RETURN(s.attr, fs.GetAttr(s.ino));
  if (S_ISLNK(s.attr.mode)) {
    E4_ASSIGN_OR_RETURN(s.target, fs.ReadLink(s.ino));
  }
  E4_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListXattrs(s.ino));
  for (const std::string& name : names) {
    E4_ASSIGN_OR_RETURN(std::string value, fs.GetXattr(s.ino, name));
    s.xattrs.emplace_back(name, std::move(value));
  }
  auto raw = RawView(image);
  if (raw.ok()) {
    auto inode = (*raw)->Inode(s.ino);
    if (inode.ok()) {
      s.raw = std::move(*inode);
    } else {
      s.raw_error = StatusText(inode.status());
    }
  } else {
    s.raw_error = StatusText(raw.status());
  }
  return s;
}

void PrintStat(const StatInfo& s) {
  const ext4::Attributes& a = s.attr;
  std::string out;
  absl::StrAppend(&out, "File: ", s.path, "\n");
  absl::StrAppend(&out, "Inode: ", s.ino, "\n");
  absl::StrAppend(&out, "Type: ", TypeName(a.mode), "\n");
  absl::StrAppend(&out, "Mode: ", OctalMode(a.mode), " (", ModeString(a.mode),
                  ")\n");
  absl::StrAppend(&out, "Links: ", a.nlink, "\n");
  absl::StrAppend(&out, "Uid: ", a.uid, "\n");
  absl::StrAppend(&out, "Gid: ", a.gid, "\n");
  absl::StrAppend(&out, "Size: ", a.size, "\n");
  absl::StrAppend(&out, "Blocks: ", a.blocks, "\n");
  absl::StrAppend(&out, "Generation: ", a.generation, "\n");
  if (s.raw) {
    const format::Inode& in = s.raw->inode;
    char flags[16];
    std::snprintf(flags, sizeof(flags), "0x%x", in.flags);
    std::string names;
    for (const std::string& n : FlagNames(in.flags)) {
      absl::StrAppend(&names, names.empty() ? "" : " ", n);
    }
    absl::StrAppend(&out, "Flags: ", flags,
                    names.empty() ? "" : " (" + names + ")", "\n");
    absl::StrAppend(&out, "File ACL: ", in.file_acl, "\n");
    absl::StrAppend(&out, "Project: ", in.projid, "\n");
    absl::StrAppend(&out, "Extra isize: ", in.extra_isize, "\n");
  } else {
    absl::StrAppend(&out, "Raw inode: unreadable: ", s.raw_error, "\n");
  }
  auto time_line = [&](const char* label, const ext4::Timestamp& t) {
    absl::StrAppend(&out, label, FormatTime(t), " (@", EpochTime(t), ")\n");
  };
  time_line("Access: ", a.atime);
  time_line("Modify: ", a.mtime);
  time_line("Change: ", a.ctime);
  if (!s.raw || s.raw->inode.has_crtime()) time_line("Birth: ", a.crtime);
  if (S_ISLNK(a.mode)) absl::StrAppend(&out, "Target: ", s.target, "\n");
  if (S_ISCHR(a.mode) || S_ISBLK(a.mode)) {
    absl::StrAppend(&out, "Device: ", a.rdev_major, ",", a.rdev_minor, "\n");
  }
  absl::StrAppend(&out, "Xattrs: ", s.xattrs.size(), "\n");
  for (const auto& [name, value] : s.xattrs) {
    absl::StrAppend(&out, "  ", name, " (", value.size(), ")");
    if (!value.empty()) {
      constexpr size_t kShown = 64;
      std::string shown = value.substr(0, kShown);
      absl::StrAppend(&out, " = ", Quote(shown),
                      value.size() > kShown ? "..." : "");
    }
    out += '\n';
  }
  WriteOut(out.data(), out.size());
}

void StatJson(JsonWriter& j, const StatInfo& s) {
  const ext4::Attributes& a = s.attr;
  j.BeginObject();
  j.Field("path", s.path);
  j.Field("ino", s.ino);
  j.Field("type", TypeKey(a.mode));
  j.Field("mode", OctalMode(a.mode));
  j.Field("st_mode", a.mode);
  j.Field("nlink", a.nlink);
  j.Field("uid", a.uid);
  j.Field("gid", a.gid);
  j.Field("size", a.size);
  j.Field("blocks", a.blocks);
  j.Field("generation", a.generation);
  TimeJson(j, "atime", a.atime);
  TimeJson(j, "mtime", a.mtime);
  TimeJson(j, "ctime", a.ctime);
  if (!s.raw || s.raw->inode.has_crtime()) TimeJson(j, "crtime", a.crtime);
  if (s.raw) {
    const format::Inode& in = s.raw->inode;
    j.Field("flags", in.flags);
    j.Key("flag_names");
    j.BeginArray();
    for (const std::string& n : FlagNames(in.flags)) j.String(n);
    j.EndArray();
    j.Field("file_acl", in.file_acl);
    j.Field("projid", in.projid);
    j.Field("extra_isize", in.extra_isize);
  } else {
    j.Field("raw_error", s.raw_error);
  }
  if (S_ISLNK(a.mode)) j.Field("target", s.target);
  if (S_ISCHR(a.mode) || S_ISBLK(a.mode)) {
    j.Key("rdev");
    j.BeginObject();
    j.Field("major", a.rdev_major);
    j.Field("minor", a.rdev_minor);
    j.EndObject();
  }
  j.Key("xattrs");
  j.BeginArray();
  for (const auto& [name, value] : s.xattrs) {
    j.BeginObject();
    j.Field("name", name);
    j.Field("size", value.size());
    if (IsPrintableText(value)) {
      j.Field("value", value);
    } else {
      j.Field("value_base64", Base64(value));
    }
    j.EndObject();
  }
  j.EndArray();
  j.EndObject();
}

// --------------------------------------------------------------- cat ----

constexpr char kCatUsage[] =
    "Usage: e4 cat IMAGE:/path...\n"
    "Writes the contents of files inside an image to stdout, one after the\n"
    "other. Symlinks are followed; holes read as zeros.\n"
    "\n"
    "  -h, --help  this help\n";

absl::Status CatOne(ext4::Filesystem& fs, const ImagePath& where) {
  E4_ASSIGN_OR_RETURN(ext4::InodeNumber ino,
                      Resolve(fs, where.path, /*follow=*/true));
  E4_ASSIGN_OR_RETURN(ext4::Attributes attr, fs.GetAttr(ino));
  if (S_ISDIR(attr.mode)) return ext4::ErrnoError(EISDIR, "");
  if (!S_ISREG(attr.mode)) {
    return ext4::ErrnoError(EINVAL,
                            "not a regular file but a " + TypeName(attr.mode));
  }
  constexpr size_t kChunk = 1 << 20;
  std::vector<uint8_t> buffer(kChunk);
  static const std::vector<uint8_t> zeros(kChunk, 0);
  const uint64_t size = attr.size;
  auto stdout_error = [] {
    return ext4::ErrnoError(errno ? errno : EIO, "writing to stdout");
  };
  // Copies [from, to) through Read().
  auto copy = [&](uint64_t from, uint64_t to) -> absl::Status {
    while (from < to) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(kChunk, to - from));
      E4_ASSIGN_OR_RETURN(size_t got,
                          fs.Read(ino, from, std::span(buffer.data(), want)));
      if (got == 0) {
        return ext4::ErrnoError(EIO, absl::StrCat("short read at ", from));
      }
      if (!WriteOut(buffer.data(), got)) return stdout_error();
      from += got;
    }
    return absl::OkStatus();
  };
  uint64_t pos = 0;
  while (pos < size) {
    auto data = fs.Seek(ino, pos, SEEK_DATA);
    uint64_t data_start;
    if (data.ok()) {
      data_start = std::min(*data, size);
    } else if (ext4::ErrnoOf(data.status()) == ENXIO) {
      data_start = size;
    } else {
      // No hole information: everything goes through Read().
      return copy(pos, size);
    }
    for (uint64_t z = pos; z < data_start;) {
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(kChunk, data_start - z));
      if (!WriteOut(zeros.data(), n)) return stdout_error();
      z += n;
    }
    pos = data_start;
    if (pos >= size) break;
    auto hole = fs.Seek(ino, pos, SEEK_HOLE);
    const uint64_t data_end = hole.ok() ? std::min(*hole, size) : size;
    E4_RETURN_IF_ERROR(copy(pos, std::max(data_end, pos + 1)));
    pos = std::max(data_end, pos + 1);
  }
  return absl::OkStatus();
}

// Parses the IMAGE:/path operands; a usage error for any other.
std::optional<int> ParseOperands(const Command& cmd,
                                 const std::vector<std::string>& operands,
                                 std::vector<ImagePath>* out) {
  if (operands.empty()) return cmd.UsageError("missing IMAGE:/path");
  for (const std::string& op : operands) {
    auto where = ParseImagePath(op);
    if (!where.ok())
      return cmd.UsageError(std::string(where.status().message()));
    out->push_back(*where);
  }
  return std::nullopt;
}

constexpr int kJsonOption = 0x100;

}  // namespace

int RunLs(int argc, char** argv) {
  Command cmd("ls", kLsUsage);
  LsOptions opt;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "laidU", {{"json", no_argument, nullptr, kJsonOption}},
          [&](int c, const char*) -> std::optional<int> {
            switch (c) {
              case 'l':
                opt.long_format = true;
                break;
              case 'a':
                opt.all = true;
                break;
              case 'i':
                opt.inodes = true;
                break;
              case 'd':
                opt.directory = true;
                break;
              case 'U':
                opt.unsorted = true;
                break;
              case kJsonOption:
                opt.json = true;
                break;
            }
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  std::vector<ImagePath> paths;
  if (auto stop = ParseOperands(cmd, operands, &paths)) return *stop;
  ImageSet images(/*writable=*/false);
  JsonWriter json;
  int rc = kExitOk;
  if (opt.json && paths.size() > 1) json.BeginArray();
  for (size_t i = 0; i < paths.size(); ++i) {
    const ImagePath& where = paths[i];
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    const bool follow = operands[i].size() > 1 && operands[i].back() == '/';
    if (!opt.json && paths.size() > 1 && i > 0) WriteOut("\n", 1);
    absl::Status status = ListOne(*(*image)->fs, where, follow, opt,
                                  opt.json ? &json : nullptr, paths.size() > 1);
    if (!status.ok()) rc = cmd.Fail(Display(where) + ": " + StatusText(status));
  }
  if (opt.json) {
    if (paths.size() > 1) json.EndArray();
    std::string text = json.Finish();
    WriteOut(text.data(), text.size());
  }
  if (std::fflush(stdout) != 0) rc = cmd.Fail("writing to stdout failed");
  return rc;
}

int RunStat(int argc, char** argv) {
  Command cmd("stat", kStatUsage);
  bool follow = false;
  bool json_out = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "L",
          {{"dereference", no_argument, nullptr, 'L'},
           {"json", no_argument, nullptr, kJsonOption}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'L') follow = true;
            if (c == kJsonOption) json_out = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  std::vector<ImagePath> paths;
  if (auto stop = ParseOperands(cmd, operands, &paths)) return *stop;
  ImageSet images(/*writable=*/false);
  JsonWriter json;
  int rc = kExitOk;
  if (json_out && paths.size() > 1) json.BeginArray();
  for (size_t i = 0; i < paths.size(); ++i) {
    const ImagePath& where = paths[i];
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    auto info = Gather(**image, where, follow);
    if (!info.ok()) {
      rc = cmd.Fail(Display(where) + ": " + StatusText(info.status()));
      continue;
    }
    if (json_out) {
      StatJson(json, *info);
    } else {
      if (i > 0) WriteOut("\n", 1);
      PrintStat(*info);
    }
  }
  if (json_out) {
    if (paths.size() > 1) json.EndArray();
    std::string text = json.Finish();
    WriteOut(text.data(), text.size());
  }
  if (std::fflush(stdout) != 0) rc = cmd.Fail("writing to stdout failed");
  return rc;
}

int RunCat(int argc, char** argv) {
  Command cmd("cat", kCatUsage);
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "", {},
          [](int, const char*) -> std::optional<int> { return std::nullopt; },
          &operands)) {
    return *stop;
  }
  std::vector<ImagePath> paths;
  if (auto stop = ParseOperands(cmd, operands, &paths)) return *stop;
  ImageSet images(/*writable=*/false);
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    absl::Status status = CatOne(*(*image)->fs, where);
    if (!status.ok()) {
      rc = cmd.Fail(Display(where) + ": " + StatusText(status));
    }
  }
  if (std::fflush(stdout) != 0) rc = cmd.Fail("writing to stdout failed");
  return rc;
}

}  // namespace e4cli
