// Support code for tests that make images with e2fsprogs and check them:
// scratch directories, shell commands with their output, and file bytes.
//
// Note for users inside namespace ext4: once this header is included, an
// unqualified `testing::` there names ext4::testing; spell gtest's namespace
// as `::testing::`.
#ifndef EXT4_TESTING_IMAGE_TOOLS_H_
#define EXT4_TESTING_IMAGE_TOOLS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace ext4::testing {

inline constexpr char kMke2fs[] = "/usr/sbin/mke2fs";
inline constexpr char kE2fsck[] = "/usr/sbin/e2fsck";
inline constexpr char kDebugfs[] = "/usr/sbin/debugfs";
inline constexpr char kDumpe2fs[] = "/usr/sbin/dumpe2fs";
inline constexpr char kTune2fs[] = "/usr/sbin/tune2fs";

// True when every path names a file this process may execute.
bool HaveTools(std::initializer_list<const char*> paths);

// True when mke2fs, e2fsck, debugfs and dumpe2fs are all there.
bool HaveE2fsprogs();

// Makes a new directory "$TEST_TMPDIR/<prefix>XXXXXX" (/tmp when TEST_TMPDIR
// is unset or empty) and returns its path; "" on failure.
std::string MakeTempDir(std::string_view prefix);

// What happens to a command's standard error.
enum class StderrMode {
  kCapture,  // " 2>&1" is appended: it goes into the output
  kDiscard,  // " 2>/dev/null" is appended
  kInherit,  // left alone: it goes wherever the test's own stderr goes
};

struct CommandResult {
  // The exit status; -1 when the shell could not be started or the command
  // did not exit normally.
  int exit_code = -1;
  std::string output;  // standard output (and standard error with kCapture)
};

// Runs `command` with /bin/sh. The redirection for `mode` is appended to the
// command text as is, so in a list it applies to the last command only.
CommandResult RunCommand(const std::string& command,
                         StderrMode mode = StderrMode::kCapture);

// Makes `dir`/fs.img with `mke2fs -q -F <args> -d <tree> <image> <size>` from
// a small tree (`dir`/src: a file, a symlink, a subdirectory holding 20000
// zero bytes); returns the image's path, "" on failure.
std::string MakeImageWithSmallTree(const std::string& dir,
                                   const std::string& args,
                                   const std::string& size);

// The mke2fs layouts the on-disk format tests (superblock, group
// descriptors, inodes) check against dumpe2fs and debugfs: `args` and
// `size` go to mke2fs, `post` (if any) to tune2fs afterwards.
struct ImageVariant {
  const char* name;
  const char* args;
  const char* size;
  const char* post;  // a command run on the image afterwards, or nullptr
};

inline constexpr ImageVariant kImageVariants[] = {
    {"ext4", "-t ext4", "4M", nullptr},
    {"ext4_4k", "-t ext4 -b 4096", "16M", nullptr},
    {"ext4_64k", "-t ext4 -b 65536", "64M", nullptr},
    {"no_csum_no_64bit", "-t ext4 -O ^metadata_csum,^64bit", "4M", nullptr},
    {"gdt_csum_32", "-t ext4 -O ^metadata_csum,^64bit,uninit_bg", "4M",
     nullptr},
    {"gdt_csum_64", "-t ext4 -O ^metadata_csum,uninit_bg", "4M", nullptr},
    {"inode128", "-t ext4 -I 128", "4M", nullptr},
    {"ext2", "-t ext2", "4M", nullptr},
    {"ext3", "-t ext3", "8M", nullptr},
    {"bigalloc", "-t ext4 -O bigalloc -C 16384", "32M", nullptr},
    {"meta_bg", "-t ext4 -O meta_bg,^resize_inode", "256M", nullptr},
    {"no_flex_bg", "-t ext4 -O ^flex_bg", "32M", nullptr},
    {"sparse_super2", "-t ext4 -O sparse_super2", "64M", nullptr},
    {"inline_data", "-t ext4 -O inline_data", "4M", nullptr},
    {"csum_seed_orphan_file", "-t ext4 -O metadata_csum_seed,orphan_file", "8M",
     nullptr},
    {"csum_seed_new_uuid", "-t ext4 -O metadata_csum_seed", "8M",
     "-U 01234567-89ab-cdef-0123-456789abcdef"},
    {"label", "-t ext4 -L e4fs-volume-lbl -E root_owner=1000:1000", "4M",
     nullptr},
};

// Exactly `length` bytes of `path` from `offset`; empty on any failure or
// short read.
std::vector<uint8_t> ReadFileAt(const std::string& path, uint64_t offset,
                                size_t length);

// The whole file (empty when it cannot be read).
std::string ReadFileBytes(const std::string& path);

}  // namespace ext4::testing

#endif  // EXT4_TESTING_IMAGE_TOOLS_H_
