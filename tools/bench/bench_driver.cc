// bench_driver: runs one timed phase of the e4fs benchmark against any
// mounted directory, and prints one line per phase:
//
//   phase=<name> seconds=<float> ops=<n>
//
// The phases are meant to run in order on one directory (the workload is
// derived from --seed and the sizes, so every phase knows what the earlier
// ones made without keeping a manifest in the filesystem under test):
//
//   create         a source-like tree of --files files in nested directories
//   walk           recursive lstat of the tree (checks the counts)
//   read           read every file fully (checks the contents)
//   link           hard link every file to NAME.lnk in the same directory
//   rename         rename every NAME.lnk to NAME.mv
//   unlink         remove files, links and directories
//   bigdir_create  --entries empty files in one directory
//   bigdir_lookup  random stat() of names in that directory (--ops, default
//                  --entries)
//   seqwrite       --bytes in 1 MiB writes, then fsync
//   seqread        read that file back in 1 MiB reads (checks the contents)
//   randread       --ops 4 KiB preads at random aligned offsets (default
//                  20000; checks the contents)
//   cleanup        remove the big directory and the sequential file
//   all            every phase above in order, without dropping caches
//
// and two helpers that time a mount and an unmount:
//
//   mount MNT [--server] [--timeout S] [--pidfile F] [--log F] -- CMD ARGS...
//       runs CMD; the time is taken when MNT is a mount point whose root
//       answers stat. Then the driver waits for CMD to finish (mount(8), a
//       server that goes to the background) and checks its exit status;
//       with --server, CMD is the server itself, running in the foreground,
//       and its pid goes to --pidfile. CMD's output goes to --log.
//   unmount MNT [--pid P] [--timeout S] -- CMD ARGS...
//       runs CMD (e.g. umount MNT); done when MNT is no longer a mount point
//       and process P (the server) has exited, so the image is complete.
//
// Any failed system call, short read or content mismatch ends the program
// with a message and exit status 1: a benchmark must not time failures.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr size_t kChunk = 1 << 20;  // seqwrite/seqread request size
constexpr size_t kPage = 4096;      // randread request size
constexpr size_t kMaxFileSize = 65536;

std::string g_phase = "bench_driver";

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "bench_driver: %s: %s\n", g_phase.c_str(),
               message.c_str());
  std::exit(1);
}

// Fails with the text of the current errno.
[[noreturn]] void FailErrno(const std::string& call, const std::string& path) {
  const int err = errno;
  Fail(call + "(" + path + "): " + std::strerror(err));
}

struct Options {
  uint64_t files = 10000;
  uint64_t entries = 100000;
  uint64_t bytes = uint64_t{1} << 30;
  uint64_t seed = 1;
  int64_t ops = -1;  // -1: the phase's default
  double timeout = 60;
  int64_t pid = 0;
  bool server = false;
  std::string pidfile;
  std::string log;
  std::vector<std::string> command;  // after "--"
};

// splitmix64: small, fast, and the same sequence on every platform (the
// standard library's distributions are not specified bit for bit).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi]. The modulo bias is below 2^-40 for the ranges used
  // here (at most a few million values).
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    const uint64_t span = hi - lo;
    if (span == UINT64_MAX) return Next();
    return lo + Next() % (span + 1);
  }

 private:
  uint64_t state_;
};

// A bijection on 64 bits (the splitmix64 finalizer), used to make distinct
// names from distinct indexes.
uint64_t Mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

void Report(const std::string& phase, double seconds, uint64_t ops) {
  std::printf("phase=%s seconds=%.6f ops=%" PRIu64 "\n", phase.c_str(), seconds,
              ops);
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// System call wrappers that fail loudly.

int Open(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) FailErrno("open", path);
  return fd;
}

void Close(int fd, const std::string& path) {
  // close() must not be retried on EINTR on Linux: the descriptor is gone.
  if (::close(fd) != 0 && errno != EINTR) FailErrno("close", path);
}

void WriteAll(int fd, const uint8_t* data, size_t size,
              const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      FailErrno("write", path);
    }
    if (n == 0) Fail("write(" + path + ") wrote nothing");
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Reads until `size` bytes or end of file; returns the count.
size_t ReadFull(int fd, uint8_t* data, size_t size, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      FailErrno("read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

void PreadFull(int fd, uint8_t* data, size_t size, uint64_t offset,
               const std::string& path) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      FailErrno("pread", path);
    }
    if (n == 0) {
      Fail("pread(" + path + ") hit end of file at offset " +
           std::to_string(offset + done));
    }
    done += static_cast<size_t>(n);
  }
}

void Mkdir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) FailErrno("mkdir", path);
}

bool Exists(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno != ENOENT) FailErrno("lstat", path);
  return false;
}

void RequireDirectory(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) FailErrno("stat", path);
  if (!S_ISDIR(st.st_mode)) Fail(path + " is not a directory");
}

// ---------------------------------------------------------------------------
// The source-like tree, derived from the seed and the file count.

struct TreeFile {
  std::string path;  // relative to DIR
  uint32_t size;
  uint32_t pool_offset;  // where its contents start in the text pool
};

struct Tree {
  // Directories relative to DIR in creation order: every parent comes before
  // its children. dirs[0] is "tree".
  std::vector<std::string> dirs;
  // Files grouped by directory: the files of dirs[i] are
  // files[first_file[i] .. first_file[i + 1]).
  std::vector<TreeFile> files;
  std::vector<size_t> first_file;
  std::vector<uint8_t> pool;  // text the file contents are cut from
};

constexpr const char* kWords[] = {
    "alloc",  "buffer", "cache",  "config", "driver", "engine", "format",
    "handle", "index",  "inode",  "kernel", "loader", "parser", "queue",
    "reader", "socket", "table",  "util",   "writer", "stream", "thread",
    "timer",  "vector", "string", "module", "bitmap", "crypto", "device"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);
constexpr const char* kExtensions[] = {".c",  ".h",  ".cc", ".h",   ".cc",
                                       ".py", ".rs", ".go", ".md",  ".txt",
                                       ".S",  ".mk", ".js", ".java"};
constexpr size_t kNumExtensions = sizeof(kExtensions) / sizeof(kExtensions[0]);

// Sizes spread evenly over ten power-of-two buckets from 100 B to 64 KiB:
// many small files, a long tail of large ones (median about 3 KiB).
uint32_t SourceFileSize(Rng& rng) {
  const uint64_t bucket = rng.Uniform(0, 9);
  const uint64_t lo = uint64_t{100} << bucket;
  const uint64_t hi = std::min<uint64_t>(2 * lo, kMaxFileSize);
  return static_cast<uint32_t>(rng.Uniform(lo, hi));
}

// Pseudo source text: words, punctuation and line breaks.
std::vector<uint8_t> MakeTextPool(uint64_t seed, size_t size) {
  Rng rng(seed ^ 0x74657874706F6F6Cull);
  std::vector<uint8_t> pool;
  pool.reserve(size + 64);
  size_t column = 0;
  while (pool.size() < size) {
    const char* word = kWords[rng.Uniform(0, kNumWords - 1)];
    const size_t len = std::strlen(word);
    pool.insert(pool.end(), word, word + len);
    column += len;
    static constexpr char kSeparators[] = " (_);,.=*+";
    pool.push_back(static_cast<uint8_t>(
        kSeparators[rng.Uniform(0, sizeof(kSeparators) - 2)]));
    ++column;
    if (column > 60 + rng.Uniform(0, 20)) {
      pool.push_back('\n');
      const uint64_t indent = rng.Uniform(0, 3) * 2;
      pool.insert(pool.end(), indent, ' ');
      column = indent;
    }
  }
  pool.resize(size);
  return pool;
}

Tree BuildTree(uint64_t num_files, uint64_t seed) {
  Tree tree;
  constexpr size_t kPoolSize = 1 << 20;
  tree.pool = MakeTextPool(seed, kPoolSize);
  Rng rng(seed ^ 0x74726565ull);
  // Breadth first: a directory becomes real when it is taken from the queue
  // and given its files; each one queues 1 to 4 subdirectories, so the
  // queue never runs dry and the tree stays a handful of levels deep.
  std::vector<std::string> queue = {"tree"};
  size_t head = 0;
  do {
    const std::string dir = queue[head++];
    tree.dirs.push_back(dir);
    tree.first_file.push_back(tree.files.size());
    const uint64_t remaining = num_files - tree.files.size();
    const uint64_t count = std::min<uint64_t>(rng.Uniform(10, 20), remaining);
    for (uint64_t i = 0; i < count; ++i) {
      TreeFile file;
      file.path = dir + "/" + kWords[rng.Uniform(0, kNumWords - 1)] + "_" +
                  std::to_string(i) +
                  kExtensions[rng.Uniform(0, kNumExtensions - 1)];
      file.size = SourceFileSize(rng);
      file.pool_offset =
          static_cast<uint32_t>(rng.Uniform(0, kPoolSize - kMaxFileSize));
      tree.files.push_back(std::move(file));
    }
    const uint64_t subdirs = rng.Uniform(1, 4);
    for (uint64_t i = 0; i < subdirs; ++i) {
      queue.push_back(dir + "/" + kWords[rng.Uniform(0, kNumWords - 1)] +
                      std::to_string(i));
    }
  } while (tree.files.size() < num_files);
  tree.first_file.push_back(tree.files.size());
  return tree;
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir + "/" + name;
}

// ---------------------------------------------------------------------------
// Tree phases.

void PhaseCreate(const std::string& root, const Options& opt) {
  const Tree tree = BuildTree(opt.files, opt.seed);
  RequireDirectory(root);
  if (Exists(Join(root, "tree"))) {
    Fail(Join(root, "tree") + " exists already (run unlink first)");
  }
  Timer timer;
  for (size_t d = 0; d < tree.dirs.size(); ++d) {
    Mkdir(Join(root, tree.dirs[d]));
    for (size_t f = tree.first_file[d]; f < tree.first_file[d + 1]; ++f) {
      const TreeFile& file = tree.files[f];
      const std::string path = Join(root, file.path);
      const int fd = Open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
      WriteAll(fd, tree.pool.data() + file.pool_offset, file.size, path);
      Close(fd, path);
    }
  }
  Report("create", timer.Seconds(), tree.dirs.size() + tree.files.size());
}

struct WalkCounts {
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t other = 0;
};

// Lists `path` (opened as `dirfd`) and lstats every entry, descending into
// subdirectories. Takes ownership of dirfd.
void WalkDirectory(int dirfd, const std::string& path, WalkCounts& counts) {
  DIR* dir = ::fdopendir(dirfd);
  if (dir == nullptr) FailErrno("fdopendir", path);
  std::vector<std::string> subdirs;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) FailErrno("readdir", path);
      break;
    }
    const char* name = entry->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    struct stat st;
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      FailErrno("lstat", Join(path, name));
    }
    if (S_ISDIR(st.st_mode)) {
      ++counts.dirs;
      subdirs.emplace_back(name);
    } else if (S_ISREG(st.st_mode)) {
      ++counts.files;
    } else {
      ++counts.other;
    }
  }
  // Descend after listing, so that one descriptor per level is open.
  for (const std::string& name : subdirs) {
    const std::string child = Join(path, name);
    int fd;
    do {
      fd = ::openat(dirfd, name.c_str(),
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) FailErrno("open", child);
    WalkDirectory(fd, child, counts);
  }
  if (::closedir(dir) != 0) FailErrno("closedir", path);
}

void PhaseWalk(const std::string& root, const Options& opt) {
  const Tree tree = BuildTree(opt.files, opt.seed);
  const std::string top = Join(root, "tree");
  WalkCounts counts;
  Timer timer;
  struct stat st;
  if (::lstat(top.c_str(), &st) != 0) FailErrno("lstat", top);
  ++counts.dirs;
  WalkDirectory(Open(top, O_RDONLY | O_DIRECTORY), top, counts);
  const double seconds = timer.Seconds();
  if (counts.files != tree.files.size() || counts.dirs != tree.dirs.size() ||
      counts.other != 0) {
    Fail("found " + std::to_string(counts.files) + " files, " +
         std::to_string(counts.dirs) + " directories and " +
         std::to_string(counts.other) + " others under " + top +
         "; the create phase made " + std::to_string(tree.files.size()) +
         " files and " + std::to_string(tree.dirs.size()) + " directories");
  }
  Report("walk", seconds, counts.files + counts.dirs);
}

void PhaseRead(const std::string& root, const Options& opt) {
  const Tree tree = BuildTree(opt.files, opt.seed);
  std::vector<uint8_t> buffer(kMaxFileSize + 1);
  Timer timer;
  for (const TreeFile& file : tree.files) {
    const std::string path = Join(root, file.path);
    const int fd = Open(path, O_RDONLY);
    // Ask for one byte more than expected, to see the end of the file.
    const size_t n = ReadFull(fd, buffer.data(), buffer.size(), path);
    Close(fd, path);
    if (n != file.size) {
      Fail(path + ": read " + std::to_string(n) + " bytes, expected " +
           std::to_string(file.size));
    }
    if (std::memcmp(buffer.data(), tree.pool.data() + file.pool_offset, n) !=
        0) {
      Fail(path + ": contents differ from what create wrote");
    }
  }
  Report("read", timer.Seconds(), tree.files.size());
}

void PhaseLink(const std::string& root, const Options& opt) {
  const Tree tree = BuildTree(opt.files, opt.seed);
  Timer timer;
  for (const TreeFile& file : tree.files) {
    const std::string from = Join(root, file.path);
    const std::string to = from + ".lnk";
    if (::link(from.c_str(), to.c_str()) != 0) FailErrno("link", to);
  }
  Report("link", timer.Seconds(), tree.files.size());
}

void PhaseRename(const std::string& root, const Options& opt) {
  const Tree tree = BuildTree(opt.files, opt.seed);
  Timer timer;
  for (const TreeFile& file : tree.files) {
    const std::string base = Join(root, file.path);
    const std::string from = base + ".lnk";
    const std::string to = base + ".mv";
    if (::rename(from.c_str(), to.c_str()) != 0) FailErrno("rename", from);
  }
  Report("rename", timer.Seconds(), tree.files.size());
}

void PhaseUnlink(const std::string& root, const Options& opt) {
  const Tree tree = BuildTree(opt.files, opt.seed);
  Timer timer;
  uint64_t ops = 0;
  for (const TreeFile& file : tree.files) {
    const std::string path = Join(root, file.path);
    const std::string moved = path + ".mv";
    if (::unlink(path.c_str()) != 0) FailErrno("unlink", path);
    if (::unlink(moved.c_str()) != 0) FailErrno("unlink", moved);
    ops += 2;
  }
  // Children were created after their parents: remove in reverse.
  for (size_t d = tree.dirs.size(); d-- > 0;) {
    const std::string path = Join(root, tree.dirs[d]);
    if (::rmdir(path.c_str()) != 0) FailErrno("rmdir", path);
    ++ops;
  }
  Report("unlink", timer.Seconds(), ops);
}

// ---------------------------------------------------------------------------
// The big directory.

std::string BigName(uint64_t index, uint64_t seed) {
  char name[32];
  std::snprintf(name, sizeof(name), "e%016" PRIx64,
                Mix(index ^ (seed * 0x9E3779B97F4A7C15ull)));
  return name;
}

void PhaseBigdirCreate(const std::string& root, const Options& opt) {
  const std::string dir = Join(root, "big");
  RequireDirectory(root);
  Mkdir(dir);
  std::vector<std::string> paths;
  paths.reserve(opt.entries);
  for (uint64_t i = 0; i < opt.entries; ++i) {
    paths.push_back(Join(dir, BigName(i, opt.seed)));
  }
  Timer timer;
  for (const std::string& path : paths) {
    Close(Open(path, O_WRONLY | O_CREAT | O_EXCL, 0644), path);
  }
  Report("bigdir_create", timer.Seconds(), opt.entries);
}

void PhaseBigdirLookup(const std::string& root, const Options& opt) {
  if (opt.entries == 0) Fail("--entries must be positive");
  const std::string dir = Join(root, "big");
  const uint64_t ops =
      opt.ops >= 0 ? static_cast<uint64_t>(opt.ops) : opt.entries;
  Rng rng(opt.seed ^ 0x6C6F6F6Bull);
  std::vector<std::string> paths;
  paths.reserve(ops);
  for (uint64_t i = 0; i < ops; ++i) {
    paths.push_back(
        Join(dir, BigName(rng.Uniform(0, opt.entries - 1), opt.seed)));
  }
  Timer timer;
  for (const std::string& path : paths) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) FailErrno("stat", path);
    if (!S_ISREG(st.st_mode)) Fail(path + " is not a regular file");
  }
  Report("bigdir_lookup", timer.Seconds(), ops);
}

// ---------------------------------------------------------------------------
// Sequential and random I/O on one file. Its contents: 1 MiB chunks of the
// same random bytes, each starting with its own 8-byte chunk number.

std::vector<uint8_t> MakeChunk(uint64_t seed) {
  Rng rng(seed ^ 0x6368756E6Bull);
  std::vector<uint8_t> chunk(kChunk);
  for (size_t i = 0; i < kChunk; i += 8) {
    const uint64_t v = rng.Next();
    std::memcpy(chunk.data() + i, &v, 8);
  }
  return chunk;
}

void StampChunk(std::vector<uint8_t>& chunk, uint64_t index) {
  std::memcpy(chunk.data(), &index, 8);
}

std::string SeqPath(const std::string& root) { return Join(root, "seq.dat"); }

void PhaseSeqwrite(const std::string& root, const Options& opt) {
  const std::string path = SeqPath(root);
  std::vector<uint8_t> chunk = MakeChunk(opt.seed);
  Timer timer;
  const int fd = Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  uint64_t ops = 0;
  for (uint64_t offset = 0; offset < opt.bytes; offset += kChunk) {
    StampChunk(chunk, offset / kChunk);
    WriteAll(fd, chunk.data(), std::min<uint64_t>(kChunk, opt.bytes - offset),
             path);
    ++ops;
  }
  if (::fsync(fd) != 0) FailErrno("fsync", path);
  Close(fd, path);
  Report("seqwrite", timer.Seconds(), ops);
}

uint64_t FileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) FailErrno("fstat", path);
  return static_cast<uint64_t>(st.st_size);
}

void PhaseSeqread(const std::string& root, const Options& opt) {
  const std::string path = SeqPath(root);
  std::vector<uint8_t> expected = MakeChunk(opt.seed);
  std::vector<uint8_t> buffer(kChunk);
  const int fd = Open(path, O_RDONLY);
  if (FileSize(fd, path) != opt.bytes) {
    Fail(path + " has " + std::to_string(FileSize(fd, path)) +
         " bytes, expected " + std::to_string(opt.bytes));
  }
  Timer timer;
  uint64_t offset = 0;
  uint64_t ops = 0;
  for (;;) {
    const size_t n = ReadFull(fd, buffer.data(), kChunk, path);
    if (n == 0) break;
    ++ops;
    StampChunk(expected, offset / kChunk);
    if (offset + n > opt.bytes ||
        std::memcmp(buffer.data(), expected.data(), n) != 0) {
      Fail(path +
           ": contents differ from what seqwrite wrote in the 1 MiB "
           "chunk at offset " +
           std::to_string(offset));
    }
    offset += n;
    if (n < kChunk) break;
  }
  const double seconds = timer.Seconds();
  Close(fd, path);
  if (offset != opt.bytes) {
    Fail(path + ": read " + std::to_string(offset) + " bytes, expected " +
         std::to_string(opt.bytes));
  }
  Report("seqread", seconds, ops);
}

void PhaseRandread(const std::string& root, const Options& opt) {
  const std::string path = SeqPath(root);
  const uint64_t ops = opt.ops >= 0 ? static_cast<uint64_t>(opt.ops) : 20000;
  const std::vector<uint8_t> chunk = MakeChunk(opt.seed);
  const int fd = Open(path, O_RDONLY);
  const uint64_t size = FileSize(fd, path);
  if (size != opt.bytes) {
    Fail(path + " has " + std::to_string(size) + " bytes, expected " +
         std::to_string(opt.bytes));
  }
  const uint64_t pages = size / kPage;
  if (pages == 0) Fail(path + " is smaller than 4 KiB");
  Rng rng(opt.seed ^ 0x72616E64ull);
  std::vector<uint64_t> offsets(ops);
  for (uint64_t& offset : offsets) offset = rng.Uniform(0, pages - 1) * kPage;
  std::vector<uint8_t> buffer(kPage);
  Timer timer;
  for (const uint64_t offset : offsets) {
    PreadFull(fd, buffer.data(), kPage, offset, path);
    const size_t in_chunk = offset % kChunk;
    const uint64_t index = offset / kChunk;
    bool same = std::memcmp(buffer.data(), chunk.data() + in_chunk, kPage) == 0;
    if (in_chunk == 0) {
      // The first 8 bytes hold the chunk number instead.
      same = std::memcmp(buffer.data(), &index, 8) == 0 &&
             std::memcmp(buffer.data() + 8, chunk.data() + 8, kPage - 8) == 0;
    }
    if (!same) {
      Fail(path + ": contents differ from what seqwrite wrote at offset " +
           std::to_string(offset));
    }
  }
  const double seconds = timer.Seconds();
  Close(fd, path);
  Report("randread", seconds, ops);
}

void PhaseCleanup(const std::string& root, const Options& opt) {
  const std::string dir = Join(root, "big");
  Timer timer;
  uint64_t ops = 0;
  if (Exists(dir)) {
    for (uint64_t i = 0; i < opt.entries; ++i) {
      const std::string path = Join(dir, BigName(i, opt.seed));
      if (::unlink(path.c_str()) != 0) FailErrno("unlink", path);
      ++ops;
    }
    if (::rmdir(dir.c_str()) != 0) FailErrno("rmdir", dir);
    ++ops;
  }
  const std::string seq = SeqPath(root);
  if (Exists(seq)) {
    if (::unlink(seq.c_str()) != 0) FailErrno("unlink", seq);
    ++ops;
  }
  Report("cleanup", timer.Seconds(), ops);
}

// ---------------------------------------------------------------------------
// Mount and unmount timing.

// True when `path` is the root of a mount: its device differs from its
// parent's. On a FUSE mount the stat() is answered by the server.
bool IsMountPoint(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    FailErrno("realpath", path);
  }
  std::string parent = resolved;
  const size_t slash = parent.find_last_of('/');
  parent = slash == 0 ? "/" : parent.substr(0, slash);
  if (parent == resolved) return true;  // "/"
  struct stat st, parent_st;
  if (::stat(resolved, &st) != 0) FailErrno("stat", resolved);
  if (::stat(parent.c_str(), &parent_st) != 0) FailErrno("stat", parent);
  return st.st_dev != parent_st.st_dev;
}

// Runs the command in a child with stdin from /dev/null and stdout/stderr to
// `log` (or inherited when empty). Returns the child's pid.
pid_t Spawn(const std::vector<std::string>& command, const std::string& log) {
  if (command.empty()) Fail("no command given after --");
  const pid_t pid = ::fork();
  if (pid < 0) FailErrno("fork", command[0]);
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) ::dup2(in, 0);
    if (!log.empty()) {
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out < 0) {
        std::fprintf(stderr, "bench_driver: open(%s): %s\n", log.c_str(),
                     std::strerror(errno));
        ::_exit(127);
      }
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    std::vector<char*> argv;
    for (const std::string& arg : command) {
      argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "bench_driver: exec %s: %s\n", argv[0],
                 std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status))
    return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

void Pause() { std::this_thread::sleep_for(std::chrono::microseconds(100)); }

void PhaseMount(const std::string& mountpoint, const Options& opt) {
  RequireDirectory(mountpoint);
  if (IsMountPoint(mountpoint)) Fail(mountpoint + " is mounted already");
  const std::string where =
      opt.log.empty() ? std::string() : " (see " + opt.log + ")";
  Timer timer;
  const pid_t pid = Spawn(opt.command, opt.log);
  bool running = true;
  for (;;) {
    if (running) {
      int status;
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r < 0) FailErrno("waitpid", opt.command[0]);
      if (r == pid) {
        running = false;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          Fail("mount command " + opt.command[0] + " ended with " +
               DescribeStatus(status) + where);
        }
      }
    }
    if (IsMountPoint(mountpoint)) break;
    if (timer.Seconds() > opt.timeout) {
      Fail(mountpoint + " not mounted after " + std::to_string(opt.timeout) +
           " s" + where);
    }
    Pause();
  }
  const double seconds = timer.Seconds();
  if (opt.server && !running) {
    Fail("the server " + opt.command[0] +
         " went to the background; run it in the foreground");
  }
  if (!opt.server && running) {
    int status;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) FailErrno("waitpid", opt.command[0]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Fail("mount command " + opt.command[0] + " ended with " +
           DescribeStatus(status) + where);
    }
  }
  if (!opt.pidfile.empty()) {
    std::ofstream out(opt.pidfile);
    out << (opt.server ? pid : 0) << "\n";
    if (!out) Fail("cannot write " + opt.pidfile);
  }
  Report("mount", seconds, 1);
}

// True while `pid` exists and is not a zombie (a server reparented to an
// init that does not reap would stay one).
bool ProcessAlive(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

void PhaseUnmount(const std::string& mountpoint, const Options& opt) {
  if (!IsMountPoint(mountpoint)) Fail(mountpoint + " is not mounted");
  Timer timer;
  const pid_t child = Spawn(opt.command, opt.log);
  int status;
  pid_t r;
  do {
    r = ::waitpid(child, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) FailErrno("waitpid", opt.command[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Fail("unmount command " + opt.command[0] + " ended with " +
         DescribeStatus(status));
  }
  while (IsMountPoint(mountpoint) || (opt.pid > 0 && ProcessAlive(opt.pid))) {
    if (timer.Seconds() > opt.timeout) {
      Fail(IsMountPoint(mountpoint)
               ? mountpoint + " still mounted after " +
                     std::to_string(opt.timeout) + " s"
               : "server process " + std::to_string(opt.pid) +
                     " still running " + std::to_string(opt.timeout) +
                     " s after the unmount");
    }
    Pause();
  }
  Report("unmount", timer.Seconds(), 1);
}

// ---------------------------------------------------------------------------

void PhaseAll(const std::string& root, const Options& opt) {
  const std::pair<const char*, void (*)(const std::string&, const Options&)>
      steps[] = {{"create", PhaseCreate},
                 {"walk", PhaseWalk},
                 {"read", PhaseRead},
                 {"link", PhaseLink},
                 {"rename", PhaseRename},
                 {"unlink", PhaseUnlink},
                 {"bigdir_create", PhaseBigdirCreate},
                 {"bigdir_lookup", PhaseBigdirLookup},
                 {"seqwrite", PhaseSeqwrite},
                 {"seqread", PhaseSeqread},
                 {"randread", PhaseRandread},
                 {"cleanup", PhaseCleanup}};
  for (const auto& [name, run] : steps) {
    g_phase = name;
    run(root, opt);
  }
}

struct Phase {
  const char* name;
  void (*run)(const std::string&, const Options&);
};

constexpr Phase kPhases[] = {
    {"create", PhaseCreate},
    {"walk", PhaseWalk},
    {"read", PhaseRead},
    {"link", PhaseLink},
    {"rename", PhaseRename},
    {"unlink", PhaseUnlink},
    {"bigdir_create", PhaseBigdirCreate},
    {"bigdir_lookup", PhaseBigdirLookup},
    {"seqwrite", PhaseSeqwrite},
    {"seqread", PhaseSeqread},
    {"randread", PhaseRandread},
    {"cleanup", PhaseCleanup},
    {"all", PhaseAll},
    {"mount", PhaseMount},
    {"unmount", PhaseUnmount},
};

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: bench_driver PHASE DIR [--files N] [--entries N] [--bytes N]\n"
      "                    [--seed S] [--ops N]\n"
      "       bench_driver mount MNT [--server] [--timeout S] [--pidfile F]\n"
      "                    [--log F] -- CMD...\n"
      "       bench_driver unmount MNT [--pid P] [--timeout S] -- CMD...\n"
      "phases: create walk read link rename unlink bigdir_create "
      "bigdir_lookup\n"
      "        seqwrite seqread randread cleanup all\n"
      "sizes take K, M, G suffixes (powers of 1024). Output: one line\n"
      "phase=NAME seconds=S ops=N per phase; exit status 1 on any failure.\n");
}

uint64_t ParseCount(const std::string& flag, const std::string& text) {
  if (text.empty() || text[0] == '-')
    Fail("bad value for " + flag + ": " + text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || end == text.c_str()) {
    Fail("bad value for " + flag + ": " + text);
  }
  uint64_t scale = 1;
  const std::string suffix = end;
  if (suffix == "K" || suffix == "k") {
    scale = uint64_t{1} << 10;
  } else if (suffix == "M" || suffix == "m") {
    scale = uint64_t{1} << 20;
  } else if (suffix == "G" || suffix == "g") {
    scale = uint64_t{1} << 30;
  } else if (!suffix.empty()) {
    Fail("bad value for " + flag + ": " + text);
  }
  if (value > UINT64_MAX / scale) Fail("value too large for " + flag);
  return value * scale;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
    Usage(stdout);
    return 0;
  }
  if (args.size() < 2) {
    Usage(stderr);
    return 2;
  }
  const std::string phase_name = args[0];
  const std::string dir = args[1];
  Options opt;
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--server") {
      opt.server = true;
      continue;
    }
    if (flag == "--") {
      opt.command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (i + 1 >= args.size()) {
      Usage(stderr);
      Fail("missing value for " + flag);
    }
    const std::string& value = args[++i];
    if (flag == "--files") {
      opt.files = ParseCount(flag, value);
    } else if (flag == "--entries") {
      opt.entries = ParseCount(flag, value);
    } else if (flag == "--bytes") {
      opt.bytes = ParseCount(flag, value);
    } else if (flag == "--seed") {
      opt.seed = ParseCount(flag, value);
    } else if (flag == "--ops") {
      opt.ops = static_cast<int64_t>(ParseCount(flag, value));
    } else if (flag == "--timeout") {
      char* end = nullptr;
      opt.timeout = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0' || opt.timeout <= 0) {
        Fail("bad value for --timeout: " + value);
      }
    } else if (flag == "--pid") {
      opt.pid = static_cast<int64_t>(ParseCount(flag, value));
    } else if (flag == "--pidfile") {
      opt.pidfile = value;
    } else if (flag == "--log") {
      opt.log = value;
    } else {
      Usage(stderr);
      Fail("unknown option " + flag);
    }
  }
  for (const Phase& phase : kPhases) {
    if (phase_name == phase.name) {
      g_phase = phase_name;
      const bool takes_command =
          phase_name == "mount" || phase_name == "unmount";
      if (takes_command != !opt.command.empty()) {
        Fail(takes_command ? "needs a command after --" : "takes no command");
      }
      phase.run(dir, opt);
      return 0;
    }
  }
  Usage(stderr);
  Fail("unknown phase " + phase_name);
}
