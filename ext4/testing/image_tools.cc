#include "ext4/testing/image_tools.h"

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ext4::testing {

bool HaveTools(std::initializer_list<const char*> paths) {
  for (const char* path : paths) {
    if (access(path, X_OK) != 0) return false;
  }
  return true;
}

bool HaveE2fsprogs() {
  return HaveTools({kMke2fs, kE2fsck, kDebugfs, kDumpe2fs});
}

std::string MakeTempDir(std::string_view prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/",
                   std::string(prefix), "XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) return "";
  return std::string(buffer.data());
}

CommandResult RunCommand(const std::string& command, StderrMode mode) {
  std::string full = command;
  switch (mode) {
    case StderrMode::kCapture:
      full += " 2>&1";
      break;
    case StderrMode::kDiscard:
      full += " 2>/dev/null";
      break;
    case StderrMode::kInherit:
      break;
  }
  CommandResult result;
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) {
    result.output.append(chunk, n);
  }
  const int status = pclose(pipe);
  result.exit_code =
      status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string MakeImageWithSmallTree(const std::string& dir,
                                   const std::string& args,
                                   const std::string& size) {
  const std::string src = dir + "/src";
  const std::string setup = absl::StrCat(
      "mkdir -p ", src, "/sub && echo hello > ", src, "/file && ln -sf file ",
      src, "/link && head -c 20000 /dev/zero > ", src, "/sub/zeros");
  if (std::system(setup.c_str()) != 0) return "";
  const std::string image = dir + "/fs.img";
  const std::string command =
      absl::StrCat(kMke2fs, " -q -F ", args, " -d ", src, " ", image, " ", size,
                   " >/dev/null 2>&1");
  if (std::system(command.c_str()) != 0) return "";
  return image;
}

std::vector<uint8_t> ReadFileAt(const std::string& path, uint64_t offset,
                                size_t length) {
  std::vector<uint8_t> data(length);
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return {};
  const ssize_t got =
      pread(fd, data.data(), length, static_cast<off_t>(offset));
  close(fd);
  if (got != static_cast<ssize_t>(length)) return {};
  return data;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace ext4::testing
