#include "fuse/sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace e4fs {
namespace {

// What the sandboxed child found, one "name=value" line per check.
std::map<std::string, std::string> ParseReport(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

// One field of /proc/PID/status ("Uid", "CapEff", ...), without the name.
std::string StatusField(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "";
}

std::string ErrnoName(int result, int error) {
  if (result >= 0) return "succeeded";
  return std::strerror(error);
}

// Runs in the child, inside the sandbox: tries what must work and what must
// not, and reports each result.
std::string RunChecks(int image_fd, int stray_fd) {
  std::string report;
  auto put = [&report](const std::string& key, const std::string& value) {
    report += key + "=" + value + "\n";
  };
  char buffer[16] = {};
  put("pread",
      pread(image_fd, buffer, 5, 0) == 5 ? std::string(buffer, 5) : "failed");
  put("pwrite", pwrite(image_fd, "HELLO", 5, 0) == 5 ? "ok" : "failed");
  put("fdatasync", fdatasync(image_fd) == 0 ? "ok" : "failed");
  errno = 0;
  put("stray_fd",
      fcntl(stray_fd, F_GETFD) < 0 && errno == EBADF ? "closed" : "open");
  int rc = open("/etc/passwd", O_RDONLY);
  put("open", ErrnoName(rc, errno));
  struct stat st;
  rc = stat("/etc", &st);
  put("stat_etc", ErrnoName(rc, errno));
  rc = socket(AF_UNIX, SOCK_STREAM, 0);
  put("socket", ErrnoName(rc, errno));
  char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
  rc = execve("/bin/true", argv, nullptr);
  put("execve", ErrnoName(rc, errno));
  const pid_t child = fork();
  if (child == 0) _exit(0);  // must not happen
  put("fork", ErrnoName(child, errno));
  bool thread_ran = false;
  std::thread([&thread_ran] { thread_ran = true; }).join();
  put("thread", thread_ran ? "ran" : "no");
  put("uid", std::to_string(getuid()));
  return report;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_path_ = ::testing::TempDir() + "/sandbox_image";
    std::ofstream(image_path_) << "hello, sandbox";
  }
  std::string image_path_;
};

TEST_F(SandboxTest, ChildKeepsOnlyWhatServingNeeds) {
  const int image_fd = open(image_path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(image_fd, 0);
  const int stray_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(stray_fd, 0);
  int report_pipe[2];
  int release_pipe[2];
  ASSERT_EQ(pipe(report_pipe), 0);
  ASSERT_EQ(pipe(release_pipe), 0);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(report_pipe[0]);
    close(release_pipe[1]);
    SandboxConfig config;
    config.user = "nobody";
    absl::StatusOr<Sandbox> sandbox = Sandbox::Prepare(config);
    std::string report;
    if (!sandbox.ok()) {
      report = "error=" + std::string(sandbox.status().message()) + "\n";
    } else if (absl::Status s =
                   sandbox->Enter({image_fd, report_pipe[1], release_pipe[0]});
               !s.ok()) {
      report = "error=" + std::string(s.message()) + "\n";
    } else {
      report = RunChecks(image_fd, stray_fd);
    }
    ssize_t ignored = write(report_pipe[1], report.data(), report.size());
    (void)ignored;
    close(report_pipe[1]);
    char byte;
    ignored = read(release_pipe[0], &byte, 1);  // until the parent has looked
    _exit(0);
  }
  close(report_pipe[1]);
  close(release_pipe[0]);
  close(stray_fd);

  std::string text;
  char chunk[512];
  ssize_t n;
  while ((n = read(report_pipe[0], chunk, sizeof(chunk))) > 0) {
    text.append(chunk, static_cast<size_t>(n));
  }
  close(report_pipe[0]);

  // The child is confined now: look at it from outside.
  const std::string uid_line = StatusField(pid, "Uid");
  const std::string cap_eff = StatusField(pid, "CapEff");
  const std::string cap_prm = StatusField(pid, "CapPrm");
  const std::string cap_bnd = StatusField(pid, "CapBnd");
  const std::string no_new_privs = StatusField(pid, "NoNewPrivs");
  const std::string seccomp = StatusField(pid, "Seccomp");
  std::error_code ec;
  int root_entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/root", ec)) {
    (void)entry;
    ++root_entries;
  }
  close(release_pipe[1]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;

  const std::map<std::string, std::string> report = ParseReport(text);
  ASSERT_EQ(report.count("error"), 0u) << report.at("error");
  EXPECT_EQ(report.at("pread"), "hello");
  EXPECT_EQ(report.at("pwrite"), "ok");
  EXPECT_EQ(report.at("fdatasync"), "ok");
  EXPECT_EQ(report.at("stray_fd"), "closed");
  EXPECT_EQ(report.at("open"), std::strerror(ENOENT));
  EXPECT_EQ(report.at("stat_etc"), std::strerror(ENOENT));
  EXPECT_EQ(report.at("socket"), std::strerror(EPERM));
  EXPECT_EQ(report.at("execve"), std::strerror(EPERM));
  EXPECT_EQ(report.at("fork"), std::strerror(EPERM));
  EXPECT_EQ(report.at("thread"), "ran");

  EXPECT_EQ(cap_eff, "0000000000000000");
  EXPECT_EQ(cap_prm, "0000000000000000");
  EXPECT_EQ(cap_bnd, "0000000000000000");
  EXPECT_EQ(no_new_privs, "1");
  EXPECT_EQ(seccomp, "2");
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(root_entries, 0) << "the child's root shows host files";
  if (geteuid() == 0) {
    EXPECT_NE(report.at("uid"), "0");
    EXPECT_EQ(uid_line.substr(0, uid_line.find_first_of(" \t")),
              report.at("uid"));
    EXPECT_NE(uid_line.substr(0, 1), "0") << uid_line;
  }
  // The sandboxed write went through the inherited descriptor.
  std::ifstream in(image_path_);
  std::string contents;
  std::getline(in, contents);
  EXPECT_EQ(contents, "HELLO, sandbox");
  close(image_fd);
}

TEST_F(SandboxTest, UnknownUserIsRefusedBeforeAnythingChanges) {
  if (geteuid() != 0) GTEST_SKIP() << "the user is looked up only as root";
  SandboxConfig config;
  config.user = "no-such-user-e4fs";
  absl::StatusOr<Sandbox> sandbox = Sandbox::Prepare(config);
  ASSERT_FALSE(sandbox.ok());
  EXPECT_NE(std::string(sandbox.status().message()).find("no-such-user-e4fs"),
            std::string::npos);
  config.user = "root";
  EXPECT_FALSE(Sandbox::Prepare(config).ok());
}

TEST_F(SandboxTest, RefusesToEnterWithSeveralThreads) {
  // A second thread would escape the namespace change and the user switch.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int ready[2];
    if (pipe(ready) != 0) _exit(3);
    std::thread waiter([&ready] {
      char byte;
      ssize_t ignored = read(ready[0], &byte, 1);
      (void)ignored;
    });
    absl::StatusOr<Sandbox> sandbox = Sandbox::Prepare(SandboxConfig{});
    int code = 2;
    if (sandbox.ok()) {
      absl::Status s = sandbox->Enter({});
      code = absl::IsFailedPrecondition(s) ? 0 : 1;
    }
    ssize_t ignored = write(ready[1], "x", 1);
    (void)ignored;
    waiter.join();
    _exit(code);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace e4fs
