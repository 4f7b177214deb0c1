// Passes 3 and 4: every directory must hang from the root through the
// entries pass 2 found, with ".." naming that parent; every inode's link
// count must equal the names found for it.
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "ext4/check/checker_internal.h"
#include "ext4/errno_status.h"
#include "ext4/format/inode.h"

namespace ext4::check {
namespace {

// The most links a directory counts before dir_nlink makes it 1.
constexpr uint32_t kLinkMax = 65000;

enum class Reach : uint8_t { kUnknown, kVisiting, kConnected, kDisconnected };

}  // namespace

void Checker::CheckConnectivity() {
  const uint32_t root = format::kRootDirIno;
  const uint8_t root_state = InodeState(root);
  auto root_info = directories_.find(root);
  if (!(root_state & kInUse) || !(root_state & kIsDirectory) ||
      root_info == directories_.end()) {
    Add("root", "the root directory (inode 2) is missing or unusable", root);
  } else if (root_info->second.dotdot_seen &&
             root_info->second.dotdot != root) {
    Add("dotdot",
        absl::StrCat("'..' in the root directory names inode ",
                     root_info->second.dotdot, ", not 2"),
        root);
  }

  std::vector<uint32_t> inos;
  inos.reserve(directories_.size());
  for (const auto& [ino, info] : directories_) inos.push_back(ino);
  std::sort(inos.begin(), inos.end());

  absl::flat_hash_map<uint32_t, Reach> reach;
  reach.reserve(inos.size());
  std::vector<uint32_t> path;
  for (uint32_t start : inos) {
    if (start == root) continue;
    path.clear();
    uint32_t cur = start;
    Reach result = Reach::kDisconnected;
    while (true) {
      if (cur == root && root_info != directories_.end()) {
        result = Reach::kConnected;
        break;
      }
      Reach& r = reach[cur];
      if (r == Reach::kConnected || r == Reach::kDisconnected) {
        result = r;
        break;
      }
      if (r == Reach::kVisiting) {
        Add("unconnected_directory",
            absl::StrCat("directory ", cur,
                         " is in a loop of directories that does not reach "
                         "the root"),
            cur);
        break;
      }
      r = Reach::kVisiting;
      path.push_back(cur);
      auto it = directories_.find(cur);
      const uint32_t parent = it == directories_.end() ? 0 : it->second.parent;
      if (parent == 0) {
        Add("unconnected_directory",
            absl::StrCat("directory ", cur,
                         " is not named by any directory (its '..' is ",
                         it == directories_.end() ? 0 : it->second.dotdot, ")"),
            cur);
        break;
      }
      cur = parent;
    }
    for (uint32_t ino : path) reach[ino] = result;
  }

  for (uint32_t ino : inos) {
    if (ino == root) continue;
    const DirectoryInfo& info = directories_[ino];
    if (info.parent == 0 || !info.dotdot_seen) continue;
    if (info.dotdot != info.parent) {
      Add("dotdot",
          absl::StrCat("'..' in directory ", ino, " names inode ", info.dotdot,
                       ", but its parent is ", info.parent),
          ino);
    }
  }
}

void Checker::CheckLinkCounts() {
  for (uint32_t ino = 1; ino <= sb_.inodes_count; ++ino) {
    const uint8_t state = InodeState(ino);
    if (!(state & kInUse)) continue;
    if (ino != format::kRootDirIno && IsSpecialInode(ino)) continue;
    uint32_t found = found_links_.Get(ino - 1);
    const uint32_t stored = stored_links_.Get(ino - 1);
    const bool dir = (state & kIsDirectory) != 0;
    if (found == 0) {
      if (!dir) {
        Add("unattached_inode",
            absl::StrCat("inode ", ino, " (", stored,
                         stored == 1 ? " link" : " links",
                         ") is not named by any directory"),
            ino);
      }
      continue;
    }
    if (dir && found > kLinkMax) found = 1;
    if (found != stored) {
      Add("link_count",
          absl::StrCat("inode ", ino, " has links_count ", stored, ", but ",
                       found, found == 1 ? " name was" : " names were",
                       " found"),
          ino);
    }
  }
}

}  // namespace ext4::check
