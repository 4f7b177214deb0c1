// The e4 program's subcommands. Each takes its own argv (argv[0] is the
// subcommand's name), prints its results on stdout and its errors on stderr
// prefixed with "e4 NAME: ", and returns the process exit code: 0 on
// success, 1 on a usage error (with a hint to --help), 2 on any other
// failure -- except `check`, whose codes are e2fsck's.
#ifndef E4FS_TOOLS_E4_COMMANDS_H_
#define E4FS_TOOLS_E4_COMMANDS_H_

namespace e4cli {

int RunInfo(int argc, char** argv);
int RunLs(int argc, char** argv);
int RunStat(int argc, char** argv);
int RunCat(int argc, char** argv);
int RunExtents(int argc, char** argv);
int RunHtree(int argc, char** argv);
int RunGet(int argc, char** argv);
int RunPut(int argc, char** argv);
int RunMkdir(int argc, char** argv);
int RunRm(int argc, char** argv);
int RunMv(int argc, char** argv);
int RunLn(int argc, char** argv);
int RunChmod(int argc, char** argv);
int RunChown(int argc, char** argv);
int RunSetfattr(int argc, char** argv);
int RunGetfattr(int argc, char** argv);
// tools/e4/check_command.cc
int RunCheck(int argc, char** argv);
// tools/e4/mkfs_command.cc
int RunMkfs(int argc, char** argv);

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_COMMANDS_H_
