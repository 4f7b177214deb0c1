// e4: works on ext2/ext3/ext4 images without mounting them.
//
//   e4 SUBCOMMAND [OPTIONS] ARGS...      (e4 --help lists them)
//
// Each subcommand lives in its own function (commands.h); this file only
// dispatches.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "tools/e4/commands.h"

namespace {

// Kept in step with the e4fs server's version (fuse/options.h).
constexpr char kVersion[] = "0.1.0";

struct Subcommand {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* summary;
};

constexpr Subcommand kSubcommands[] = {
    {"info", e4cli::RunInfo, "superblock, features, journal and groups"},
    {"ls", e4cli::RunLs, "list a directory"},
    {"stat", e4cli::RunStat, "an inode's attributes, flags and xattrs"},
    {"cat", e4cli::RunCat, "write files' contents to stdout"},
    {"extents", e4cli::RunExtents, "a file's extent tree or block map"},
    {"htree", e4cli::RunHtree, "a directory's hash index"},
    {"get", e4cli::RunGet, "copy files or trees out of an image"},
    {"put", e4cli::RunPut, "copy files or trees into an image"},
    {"mkdir", e4cli::RunMkdir, "make directories"},
    {"rm", e4cli::RunRm, "remove files or trees"},
    {"mv", e4cli::RunMv, "move or rename"},
    {"ln", e4cli::RunLn, "make hard or symbolic links"},
    {"chmod", e4cli::RunChmod, "change permission bits"},
    {"chown", e4cli::RunChown, "change owner and group"},
    {"setfattr", e4cli::RunSetfattr, "set or remove an extended attribute"},
    {"getfattr", e4cli::RunGetfattr, "show extended attributes"},
    {"mkfs", e4cli::RunMkfs, "make a new filesystem image"},
    {"check", e4cli::RunCheck, "check an image's consistency"},
};

void PrintHelp() {
  std::printf(
      "Usage: e4 SUBCOMMAND [OPTIONS] ARGS...\n"
      "Reads and changes ext2/ext3/ext4 images without mounting them (no root "
      "needed).\n"
      "Files inside an image are named IMAGE:/path.\n\n"
      "Subcommands:\n");
  for (const Subcommand& s : kSubcommands) {
    std::printf("  %-9s %s\n", s.name, s.summary);
  }
  std::printf(
      "\n'e4 SUBCOMMAND --help' (or 'e4 help SUBCOMMAND') describes one.\n"
      "Exit status: 0 on success, 1 on a usage error, 2 on any other failure\n"
      "(check exits as e2fsck does).\n"
      "\nOptions:\n"
      "  -h, --help     show this help\n"
      "  -V, --version  show the version\n");
}

const Subcommand* Find(std::string_view name) {
  for (const Subcommand& s : kSubcommands) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "e4: a subcommand is needed\nTry 'e4 --help' for the list.\n");
    return 1;
  }
  std::string_view first = argv[1];
  if (first == "--help" || first == "-h") {
    PrintHelp();
    return 0;
  }
  if (first == "--version" || first == "-V") {
    std::printf("e4 (e4fs) %s\n", kVersion);
    return 0;
  }
  if (first == "help") {
    if (argc < 3) {
      PrintHelp();
      return 0;
    }
    const Subcommand* s = Find(argv[2]);
    if (s == nullptr) {
      std::fprintf(stderr, "e4: unknown subcommand '%s'\n", argv[2]);
      return 1;
    }
    char help[] = "--help";
    char* args[] = {argv[2], help, nullptr};
    return s->run(2, args);
  }
  const Subcommand* s = Find(first);
  if (s == nullptr) {
    std::fprintf(stderr,
                 "e4: unknown subcommand '%s'\nTry 'e4 --help' for the list.\n",
                 argv[1]);
    return 1;
  }
  return s->run(argc - 1, argv + 1);
}
