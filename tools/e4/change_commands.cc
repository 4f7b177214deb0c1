// e4 mkdir, rm, mv, ln, chmod and chown: single changes to an image, made
// through the engine on a read-write mount that ends clean (SyncAll).
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"
#include "tools/e4/image_path.h"
#include "tools/e4/mode_spec.h"
#include "tools/e4/text_format.h"

namespace e4cli {
namespace {

// Closes every image cleanly; a failure there fails the command.
int Finish(const Command& cmd, ImageSet& images, int rc) {
  std::string file;
  absl::Status closed = images.CloseAll(&file);
  if (!closed.ok()) {
    return cmd.Fail(
        file + ": could not finish writing the image: " + StatusText(closed));
  }
  return rc;
}

// Parses IMAGE:/path operands; a usage error for any other.
std::optional<int> ImagePaths(const Command& cmd,
                              const std::vector<std::string>& operands,
                              std::vector<ImagePath>* out) {
  for (const std::string& op : operands) {
    auto where = ParseImagePath(op);
    if (!where.ok())
      return cmd.UsageError(std::string(where.status().message()));
    out->push_back(*where);
  }
  return std::nullopt;
}

// A destination given as IMAGE:/path or as /path inside `image`.
absl::StatusOr<ImagePath> PathIn(const std::string& argument,
                                 const std::string& image) {
  if (!argument.empty() && argument[0] == '/' && !IsImagePath(argument)) {
    return ImagePath{image, NormalizePath(argument)};
  }
  E4_ASSIGN_OR_RETURN(ImagePath where, ParseImagePath(argument));
  if (!SameFile(where.image, image)) {
    return ext4::ErrnoError(EXDEV,
                            "source and destination must be in the same image");
  }
  where.image = image;
  return where;
}

// Walks `ino` and, for a directory, everything below it (not following
// symlinks), calling `visit(ino, attr, path)` on each, parents first.
absl::Status Walk(
    ext4::Filesystem& fs, ext4::InodeNumber ino, const std::string& path,
    bool recursive, std::set<ext4::InodeNumber>& dirs,
    const std::function<absl::Status(ext4::InodeNumber, const ext4::Attributes&,
                                     const std::string&)>& visit) {
  E4_ASSIGN_OR_RETURN(ext4::Attributes attr, fs.GetAttr(ino));
  E4_RETURN_IF_ERROR(visit(ino, attr, path));
  if (!recursive || !S_ISDIR(attr.mode)) return absl::OkStatus();
  if (!dirs.insert(ino).second) {
    return ext4::Corrupt("directory loop at " + path);
  }
  E4_ASSIGN_OR_RETURN(std::vector<ext4::DirEntry> entries,
                      ListEntries(fs, ino));
  for (const ext4::DirEntry& e : entries) {
    if (Interrupted()) return ext4::ErrnoError(EINTR, "interrupted");
    E4_RETURN_IF_ERROR(
        Walk(fs, e.ino, JoinPath(path, e.name), true, dirs, visit));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------- mkdir ----

constexpr char kMkdirUsage[] =
    "Usage: e4 mkdir [OPTIONS] IMAGE:/path...\n"
    "Makes directories inside an image. New directories belong to root\n"
    "(0:0; see e4 chown) and get mode 0755 unless -m says otherwise (an\n"
    "image has no umask).\n"
    "\n"
    "  -p, --parents    make missing parents too; an existing directory is\n"
    "                   not an error\n"
    "  -m, --mode MODE  the new directories' mode: octal or symbolic\n"
    "                   (relative to 0777), as chmod takes it\n"
    "  -v, --verbose    print each directory made\n"
    "  -h, --help       this help\n";

// ---------------------------------------------------------------- rm ----

constexpr char kRmUsage[] =
    "Usage: e4 rm [OPTIONS] IMAGE:/path...\n"
    "Removes files, symlinks, devices and (with -r or -d) directories from\n"
    "an image. The space of an inode is freed with its last link.\n"
    "\n"
    "  -r, -R, --recursive  remove directories and everything in them\n"
    "  -d, --dir            remove empty directories\n"
    "  -f, --force          a missing path is not an error\n"
    "  -v, --verbose        print each path removed\n"
    "  -h, --help           this help\n";

// ---------------------------------------------------------------- mv ----

constexpr char kMvUsage[] =
    "Usage: e4 mv [OPTIONS] IMAGE:/src... DEST\n"
    "Renames or moves entries inside one image. DEST is IMAGE:/path or a\n"
    "/path in the same image. When DEST is an existing directory the\n"
    "sources move into it under their own names; otherwise the single\n"
    "source is renamed to DEST, replacing a file (or an empty directory, for\n"
    "a directory) that is there.\n"
    "\n"
    "  -n, --no-clobber  never replace: an existing DEST is an error\n"
    "  -v, --verbose     print each move\n"
    "  -h, --help        this help\n";

// ---------------------------------------------------------------- ln ----

constexpr char kLnUsage[] =
    "Usage: e4 ln [OPTIONS] TARGET IMAGE:/link\n"
    "Makes a hard link, or with -s a symbolic link, inside an image. For a\n"
    "hard link TARGET is IMAGE:/path (a symlink there is linked itself) and\n"
    "the link may be written as a /path in the same image; one of the two\n"
    "may be a bare /path. For a symbolic link TARGET is any text, stored as\n"
    "it is. When the link names an existing directory the\n"
    "link goes inside it, named after TARGET's last component. New symbolic\n"
    "links belong to root (0:0).\n"
    "\n"
    "  -s, --symbolic  make a symbolic link\n"
    "  -v, --verbose   print the link made\n"
    "  -h, --help      this help\n";

// ------------------------------------------------------------- chmod ----

constexpr char kChmodUsage[] =
    "Usage: e4 chmod [OPTIONS] MODE IMAGE:/path...\n"
    "Changes permission bits inside an image. MODE is octal (755, 4755) or\n"
    "symbolic as chmod(1) takes it ([ugoa]*[+-=][rwxXst]*, or [+-=][ugo],\n"
    "comma-separated; no letter means all, without a umask). A MODE that\n"
    "starts with '-' needs '--' before it. A final symlink is followed; -R\n"
    "does not follow the symlinks it meets (nor change them).\n"
    "\n"
    "  -R, --recursive  change directories' contents too\n"
    "  -v, --verbose    print each change\n"
    "  -h, --help       this help\n";

// ------------------------------------------------------------- chown ----

constexpr char kChownUsage[] =
    "Usage: e4 chown [OPTIONS] OWNER[:GROUP] IMAGE:/path...\n"
    "       e4 chown [OPTIONS] :GROUP IMAGE:/path...\n"
    "Changes the owner and/or group inside an image. OWNER and GROUP are\n"
    "numbers, or names looked up in this machine's user and group databases;\n"
    "OWNER: (with an empty group) also sets the owner's login group. As the\n"
    "kernel does, a change clears setuid, and setgid on group-executable\n"
    "files. A final symlink is followed unless -h; -R changes the symlinks\n"
    "it meets themselves.\n"
    "\n"
    "  -R, --recursive       change directories' contents too\n"
    "  -h, --no-dereference  change a final symlink itself\n"
    "  -v, --verbose         print each change\n"
    "      --help            this help\n";

std::optional<uint32_t> LookupUser(const std::string& text, uint32_t* group) {
  if (auto n = ParseUnsigned(text, UINT32_MAX)) {
    if (group != nullptr) {
      struct passwd* pw = getpwuid(static_cast<uid_t>(*n));
      if (pw == nullptr) return std::nullopt;
      *group = pw->pw_gid;
    }
    return static_cast<uint32_t>(*n);
  }
  struct passwd* pw = getpwnam(text.c_str());
  if (pw == nullptr) return std::nullopt;
  if (group != nullptr) *group = pw->pw_gid;
  return pw->pw_uid;
}

std::optional<uint32_t> LookupGroup(const std::string& text) {
  if (auto n = ParseUnsigned(text, UINT32_MAX))
    return static_cast<uint32_t>(*n);
  struct group* gr = getgrnam(text.c_str());
  if (gr == nullptr) return std::nullopt;
  return gr->gr_gid;
}

}  // namespace

int RunMkdir(int argc, char** argv) {
  Command cmd("mkdir", kMkdirUsage);
  bool parents = false, verbose = false;
  uint32_t mode = 0755;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "pm:v",
          {{"parents", no_argument, nullptr, 'p'},
           {"mode", required_argument, nullptr, 'm'},
           {"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char* arg) -> std::optional<int> {
            if (c == 'p') parents = true;
            if (c == 'v') verbose = true;
            if (c == 'm') {
              auto m = ApplyModeSpec(arg, S_IFDIR | 0777);
              if (!m)
                return cmd.UsageError(std::string("invalid mode '") + arg +
                                      "'");
              mode = *m;
            }
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.empty()) return cmd.UsageError("missing IMAGE:/path");
  std::vector<ImagePath> paths;
  if (auto stop = ImagePaths(cmd, operands, &paths)) return *stop;
  ImageSet images(/*writable=*/true);
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    ext4::Filesystem& fs = *(*image)->fs;
    auto make =
        [&](ext4::InodeNumber parent, const std::string& name,
            const std::string& path) -> absl::StatusOr<ext4::InodeNumber> {
      E4_ASSIGN_OR_RETURN(ext4::Attributes attr,
                          fs.MakeDirectory(parent, name, mode, Root()));
      if (verbose)
        std::printf("made %s:%s\n", where.image.c_str(), path.c_str());
      return attr.ino;
    };
    absl::Status status = absl::OkStatus();
    if (!parents) {
      auto pn = ResolveParent(fs, where.path);
      status = pn.ok() ? make(pn->parent, pn->name, where.path).status()
                       : pn.status();
    } else {
      // Component by component: existing directories (or symlinks to
      // them) are passed through, missing ones made.
      ext4::InodeNumber dir = ext4::kRootInode;
      std::string path = "/";
      std::string rest = where.path;
      size_t i = 1;
      while (status.ok() && i < rest.size()) {
        size_t end = rest.find('/', i);
        if (end == std::string::npos) end = rest.size();
        const std::string name = rest.substr(i, end - i);
        i = end + 1;
        path = JoinPath(path, name);
        auto found = Resolve(fs, path, /*follow=*/true);
        if (found.ok()) {
          auto attr = fs.GetAttr(*found);
          if (!attr.ok()) {
            status = attr.status();
          } else if (!S_ISDIR(attr->mode)) {
            status = ext4::ErrnoError(ENOTDIR, path + " is not a directory");
          }
          dir = *found;
        } else if (ext4::ErrnoOf(found.status()) == ENOENT) {
          auto made = make(dir, name, path);
          if (made.ok()) {
            dir = *made;
          } else {
            status = made.status();
          }
        } else {
          status = found.status();
        }
      }
    }
    if (!status.ok()) rc = cmd.Fail(Display(where) + ": " + StatusText(status));
  }
  std::fflush(stdout);
  return Finish(cmd, images, rc);
}

int RunRm(int argc, char** argv) {
  Command cmd("rm", kRmUsage);
  bool recursive = false, dirs = false, force = false, verbose = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "rRdfv",
          {{"recursive", no_argument, nullptr, 'r'},
           {"dir", no_argument, nullptr, 'd'},
           {"force", no_argument, nullptr, 'f'},
           {"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'r' || c == 'R') recursive = true;
            if (c == 'd') dirs = true;
            if (c == 'f') force = true;
            if (c == 'v') verbose = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.empty()) {
    return force ? kExitOk : cmd.UsageError("missing IMAGE:/path");
  }
  std::vector<ImagePath> paths;
  if (auto stop = ImagePaths(cmd, operands, &paths)) return *stop;
  ImageSet images(/*writable=*/true);
  CatchInterrupts();
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    if (Interrupted()) break;
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    ext4::Filesystem& fs = *(*image)->fs;
    std::set<ext4::InodeNumber> seen;
    // Removes `name` from `parent`, whatever it is.
    std::function<absl::Status(ext4::InodeNumber, const std::string&,
                               const std::string&)>
        remove = [&](ext4::InodeNumber parent, const std::string& name,
                     const std::string& path) -> absl::Status {
      if (Interrupted()) return ext4::ErrnoError(EINTR, "interrupted");
      E4_ASSIGN_OR_RETURN(ext4::InodeNumber ino, fs.Lookup(parent, name));
      E4_ASSIGN_OR_RETURN(ext4::Attributes attr, fs.GetAttr(ino));
      if (S_ISDIR(attr.mode)) {
        if (!recursive && !dirs) {
          return ext4::ErrnoError(EISDIR, "is a directory (use -r)");
        }
        if (recursive) {
          if (!seen.insert(ino).second) {
            return ext4::Corrupt("directory loop at " + path);
          }
          E4_ASSIGN_OR_RETURN(std::vector<ext4::DirEntry> entries,
                              ListEntries(fs, ino));
          for (const ext4::DirEntry& e : entries) {
            absl::Status s = remove(ino, e.name, JoinPath(path, e.name));
            if (!s.ok()) {
              return ext4::ErrnoError(ext4::ErrnoOf(s),
                                      s.message().empty()
                                          ? JoinPath(path, e.name)
                                          : std::string(s.message()));
            }
          }
        }
        E4_RETURN_IF_ERROR(fs.RemoveDirectory(parent, name));
      } else {
        E4_RETURN_IF_ERROR(fs.Unlink(parent, name));
      }
      if (verbose)
        std::printf("removed %s:%s\n", where.image.c_str(), path.c_str());
      return absl::OkStatus();
    };
    absl::Status status = absl::OkStatus();
    auto pn = ResolveParent(fs, where.path);
    if (!pn.ok()) {
      status = pn.status();
    } else {
      status = remove(pn->parent, pn->name, where.path);
    }
    if (!status.ok()) {
      if (force && ext4::ErrnoOf(status) == ENOENT) continue;
      if (ext4::ErrnoOf(status) == EISDIR && !recursive) {
        rc = cmd.Fail(Display(where) +
                      ": is a directory (use -r, or -d for an empty one)");
      } else {
        rc = cmd.Fail(Display(where) + ": " + StatusText(status));
      }
    }
  }
  if (Interrupted()) rc = cmd.Fail("interrupted; the image is left clean");
  std::fflush(stdout);
  return Finish(cmd, images, rc);
}

int RunMv(int argc, char** argv) {
  Command cmd("mv", kMvUsage);
  bool no_clobber = false, verbose = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "nv",
          {{"no-clobber", no_argument, nullptr, 'n'},
           {"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'n') no_clobber = true;
            if (c == 'v') verbose = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() < 2) return cmd.UsageError("expected IMAGE:/src... DEST");
  std::vector<ImagePath> sources;
  if (auto stop =
          ImagePaths(cmd, {operands.begin(), operands.end() - 1}, &sources)) {
    return *stop;
  }
  for (const ImagePath& s : sources) {
    if (!SameFile(s.image, sources[0].image)) {
      return cmd.UsageError("all sources must be in one image");
    }
  }
  auto dest = PathIn(operands.back(), sources[0].image);
  if (!dest.ok()) {
    return ext4::ErrnoOf(dest.status()) == EXDEV
               ? cmd.Fail(StatusText(dest.status()) +
                          " (use e4 get and e4 put between images)")
               : cmd.UsageError(std::string(dest.status().message()));
  }
  ImageSet images(/*writable=*/true);
  auto image = images.Get(dest->image);
  if (!image.ok()) {
    return cmd.Fail(dest->image + ": " + StatusText(image.status()));
  }
  ext4::Filesystem& fs = *(*image)->fs;
  int rc = kExitOk;
  // Is DEST a directory to move into?
  std::optional<ext4::InodeNumber> into;
  if (auto d = Resolve(fs, dest->path, /*follow=*/true); d.ok()) {
    auto attr = fs.GetAttr(*d);
    if (attr.ok() && S_ISDIR(attr->mode)) into = *d;
  }
  if (!into && sources.size() > 1) {
    rc = cmd.Fail(Display(*dest) +
                  ": not a directory (several sources need one)");
    return Finish(cmd, images, rc);
  }
  const unsigned flags = no_clobber ? ext4::kRenameNoReplace : 0;
  for (const ImagePath& src : sources) {
    absl::Status status = absl::OkStatus();
    auto from = ResolveParent(fs, src.path);
    std::string to_path;
    if (!from.ok()) {
      status = from.status();
    } else if (into) {
      to_path = JoinPath(dest->path, from->name);
      status = fs.Rename(from->parent, from->name, *into, from->name, flags);
    } else {
      to_path = dest->path;
      auto to = ResolveParent(fs, dest->path);
      status = to.ok() ? fs.Rename(from->parent, from->name, to->parent,
                                   to->name, flags)
                       : to.status();
    }
    if (!status.ok()) {
      rc = cmd.Fail(Display(src) + ": " + StatusText(status));
    } else if (verbose) {
      std::printf("%s -> %s\n", Display(src).c_str(), to_path.c_str());
    }
  }
  std::fflush(stdout);
  return Finish(cmd, images, rc);
}

int RunLn(int argc, char** argv) {
  Command cmd("ln", kLnUsage);
  bool symbolic = false, verbose = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "sv",
          {{"symbolic", no_argument, nullptr, 's'},
           {"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 's') symbolic = true;
            if (c == 'v') verbose = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() != 2)
    return cmd.UsageError("expected TARGET IMAGE:/link");
  // The link is IMAGE:/path, or (for a hard link to IMAGE:/path) a /path in
  // the same image.
  absl::StatusOr<ImagePath> link = ParseImagePath(operands[1]);
  if (!symbolic && !IsImagePath(operands[1]) && IsImagePath(operands[0])) {
    link = PathIn(operands[1], ParseImagePath(operands[0])->image);
  }
  if (!link.ok()) return cmd.UsageError(std::string(link.status().message()));
  std::optional<ImagePath> target;
  if (!symbolic) {
    auto t = PathIn(operands[0], link->image);
    if (!t.ok()) {
      return ext4::ErrnoOf(t.status()) == EXDEV
                 ? cmd.Fail(StatusText(t.status()))
                 : cmd.UsageError(std::string(t.status().message()));
    }
    target = *t;
  } else if (operands[0].empty()) {
    return cmd.UsageError("an empty symlink target");
  }
  ImageSet images(/*writable=*/true);
  auto image = images.Get(link->image);
  if (!image.ok()) {
    return cmd.Fail(link->image + ": " + StatusText(image.status()));
  }
  ext4::Filesystem& fs = *(*image)->fs;
  int rc = kExitOk;
  absl::Status status = absl::OkStatus();
  std::string made = link->path;
  // Where the link goes: inside an existing directory, or as named.
  ext4::InodeNumber parent = 0;
  std::string name;
  if (auto d = Resolve(fs, link->path, /*follow=*/true);
      d.ok() && fs.GetAttr(*d).ok() && S_ISDIR(fs.GetAttr(*d)->mode)) {
    parent = *d;
    name = BaseName(symbolic ? operands[0] : target->path);
    made = JoinPath(link->path, name);
    if (name == "/" || name == "." || name == "..") {
      status = ext4::ErrnoError(EEXIST, "");
    }
  } else {
    auto pn = ResolveParent(fs, link->path);
    if (pn.ok()) {
      parent = pn->parent;
      name = pn->name;
    } else {
      status = pn.status();
    }
  }
  if (status.ok()) {
    if (symbolic) {
      status = fs.MakeSymlink(parent, name, operands[0], Root()).status();
    } else {
      auto ino = Resolve(fs, target->path, /*follow=*/false);
      status = ino.ok() ? fs.Link(*ino, parent, name).status() : ino.status();
      if (!ino.ok()) made = target->path;
    }
  }
  if (!status.ok()) {
    rc = cmd.Fail(link->image + ":" + made + ": " + StatusText(status));
  } else if (verbose) {
    std::printf("%s:%s -> %s\n", link->image.c_str(), made.c_str(),
                symbolic ? operands[0].c_str() : target->path.c_str());
  }
  std::fflush(stdout);
  return Finish(cmd, images, rc);
}

int RunChmod(int argc, char** argv) {
  Command cmd("chmod", kChmodUsage);
  bool recursive = false, verbose = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "Rv",
          {{"recursive", no_argument, nullptr, 'R'},
           {"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'R') recursive = true;
            if (c == 'v') verbose = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() < 2)
    return cmd.UsageError("expected MODE IMAGE:/path...");
  const std::string spec = operands[0];
  if (!ApplyModeSpec(spec, S_IFREG)) {
    return cmd.UsageError("invalid mode '" + spec + "'");
  }
  std::vector<ImagePath> paths;
  if (auto stop =
          ImagePaths(cmd, {operands.begin() + 1, operands.end()}, &paths)) {
    return *stop;
  }
  ImageSet images(/*writable=*/true);
  CatchInterrupts();
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    ext4::Filesystem& fs = *(*image)->fs;
    std::string path;
    auto ino = Resolve(fs, where.path, /*follow=*/true, &path);
    std::set<ext4::InodeNumber> dirs;
    absl::Status status =
        !ino.ok()
            ? ino.status()
            : Walk(fs, *ino, path, recursive, dirs,
                   [&](ext4::InodeNumber n, const ext4::Attributes& a,
                       const std::string& p) -> absl::Status {
                     if (S_ISLNK(a.mode)) return absl::OkStatus();
                     const uint32_t mode = *ApplyModeSpec(spec, a.mode);
                     if (mode == (a.mode & 07777)) return absl::OkStatus();
                     ext4::SetAttrRequest req;
                     req.mode = mode;
                     absl::Status s = fs.SetAttr(n, req, Root()).status();
                     if (!s.ok()) {
                       return ext4::ErrnoError(ext4::ErrnoOf(s),
                                               p + ": " + StatusText(s));
                     }
                     if (verbose) {
                       std::printf("%s:%s: %s -> %s\n", where.image.c_str(),
                                   p.c_str(), OctalMode(a.mode).c_str(),
                                   OctalMode(mode).c_str());
                     }
                     return absl::OkStatus();
                   });
    if (!status.ok()) rc = cmd.Fail(Display(where) + ": " + StatusText(status));
  }
  std::fflush(stdout);
  return Finish(cmd, images, rc);
}

int RunChown(int argc, char** argv) {
  Command cmd("chown", kChownUsage);
  bool recursive = false, verbose = false, no_deref = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "Rhv",
          {{"recursive", no_argument, nullptr, 'R'},
           {"no-dereference", no_argument, nullptr, 'h'},
           {"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'R') recursive = true;
            if (c == 'h') no_deref = true;
            if (c == 'v') verbose = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() < 2) {
    return cmd.UsageError("expected OWNER[:GROUP] IMAGE:/path...");
  }
  const std::string spec = operands[0];
  std::optional<uint32_t> uid, gid;
  {
    const size_t colon = spec.find(':');
    const std::string user = spec.substr(0, colon);
    const std::string group =
        colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (user.empty() && group.empty()) {
      return cmd.UsageError("invalid owner '" + spec + "'");
    }
    uint32_t login_group = 0;
    const bool want_login = colon != std::string::npos && group.empty();
    if (!user.empty()) {
      uid = LookupUser(user, want_login ? &login_group : nullptr);
      if (!uid) return cmd.UsageError("unknown user '" + user + "'");
      if (want_login) gid = login_group;
    }
    if (!group.empty()) {
      gid = LookupGroup(group);
      if (!gid) return cmd.UsageError("unknown group '" + group + "'");
    }
  }
  std::vector<ImagePath> paths;
  if (auto stop =
          ImagePaths(cmd, {operands.begin() + 1, operands.end()}, &paths)) {
    return *stop;
  }
  ImageSet images(/*writable=*/true);
  CatchInterrupts();
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    ext4::Filesystem& fs = *(*image)->fs;
    std::string path;
    auto ino = Resolve(fs, where.path, /*follow=*/!no_deref, &path);
    std::set<ext4::InodeNumber> dirs;
    absl::Status status =
        !ino.ok()
            ? ino.status()
            : Walk(fs, *ino, path, recursive, dirs,
                   [&](ext4::InodeNumber n, const ext4::Attributes& a,
                       const std::string& p) -> absl::Status {
                     ext4::SetAttrRequest req;
                     req.uid = uid;
                     req.gid = gid;
                     absl::Status s = fs.SetAttr(n, req, Root()).status();
                     if (!s.ok()) {
                       return ext4::ErrnoError(ext4::ErrnoOf(s),
                                               p + ": " + StatusText(s));
                     }
                     if (verbose) {
                       std::printf("%s:%s: %u:%u -> %u:%u\n",
                                   where.image.c_str(), p.c_str(), a.uid, a.gid,
                                   uid.value_or(a.uid), gid.value_or(a.gid));
                     }
                     return absl::OkStatus();
                   });
    if (!status.ok()) rc = cmd.Fail(Display(where) + ": " + StatusText(status));
  }
  std::fflush(stdout);
  return Finish(cmd, images, rc);
}

}  // namespace e4cli
