// e4 extents and e4 htree: how a file's blocks are mapped (the extent tree
// node by node, or the runs of an ext2/ext3 indirect map) and how a
// directory's hash index is built, each structure checked as it is shown.
#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "ext4/format/dirent.h"
#include "ext4/format/dx_hash.h"
#include "ext4/format/extent.h"
#include "ext4/format/htree.h"
#include "ext4/format/inode.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"
#include "tools/e4/image_path.h"
#include "tools/e4/raw_image.h"
#include "tools/e4/text_format.h"

namespace e4cli {
namespace {

namespace format = ext4::format;

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08" PRIx32, v);
  return buf;
}

std::string Range(uint64_t first, uint64_t count) {
  return count == 1 ? absl::StrCat(first)
                    : absl::StrCat(first, "-", first + count - 1);
}

// Opens the operand's image and its raw view, and resolves the path.
struct Target {
  Image* image = nullptr;
  RawImage* raw = nullptr;
  RawInode inode;
  std::string path;
};

absl::StatusOr<Target> Open(ImageSet& images, const ImagePath& where,
                            bool follow) {
  Target t;
  E4_ASSIGN_OR_RETURN(t.image, images.Get(where.image));
  E4_ASSIGN_OR_RETURN(ext4::InodeNumber ino,
                      Resolve(*t.image->fs, where.path, follow, &t.path));
  E4_ASSIGN_OR_RETURN(t.raw, RawView(*t.image));
  E4_ASSIGN_OR_RETURN(t.inode, t.raw->Inode(ino));
  return t;
}

// ----------------------------------------------------------- extents ----

constexpr char kExtentsUsage[] =
    "Usage: e4 extents [OPTIONS] IMAGE:/path\n"
    "Shows how a file's logical blocks map to blocks of the image: an extent\n"
    "tree node by node (index entries, leaf extents, unwritten ones marked,\n"
    "tree block checksums verified), or, for ext2/ext3 files, the runs of the\n"
    "indirect block map and its indirect blocks. Inline data, fast symlinks\n"
    "and devices have no blocks; that is said instead.\n"
    "Leaf lines read: logical FIRST-LAST -> physical FIRST-LAST (N blocks).\n"
    "\n"
    "  -L, --dereference  follow a final symlink\n"
    "  -h, --help         this help\n";

struct ExtentWalk {
  ExtentWalk(RawImage& r, const RawInode& i, std::string header)
      : raw(r), inode(i), out(std::move(header)) {}

  RawImage& raw;
  const RawInode& inode;
  std::string out;
  uint64_t extents = 0;
  uint64_t mapped = 0;
  uint64_t tree_blocks = 0;
  int problems = 0;
  // Tree blocks visited: a hostile tree may point at one block many times.
  std::set<uint64_t> seen;
};

void Leaves(ExtentWalk& w, const format::ExtentNode& node, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const format::ExtentLeaf& leaf : node.leaves) {
    absl::StrAppend(&w.out, pad, "logical ", Range(leaf.logical, leaf.length),
                    " -> physical ", Range(leaf.physical, leaf.length), " (",
                    leaf.length, leaf.length == 1 ? " block" : " blocks",
                    leaf.unwritten ? ", unwritten" : "", ")\n");
    ++w.extents;
    w.mapped += leaf.length;
  }
}

void WalkNode(ExtentWalk& w, const format::ExtentNode& node, int indent) {
  if (node.header.depth == 0) {
    Leaves(w, node, indent);
    return;
  }
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (size_t i = 0; i < node.indexes.size(); ++i) {
    const format::ExtentIndex& index = node.indexes[i];
    absl::StrAppend(&w.out, pad, "index: logical ", index.logical, "-",
                    i + 1 < node.indexes.size()
                        ? absl::StrCat(node.indexes[i + 1].logical - 1)
                        : std::string(""),
                    " -> node at block ", index.child, "\n");
    if (!w.seen.insert(index.child).second) {
      absl::StrAppend(&w.out, pad, "  ! block ", index.child,
                      " is referenced more than once\n");
      ++w.problems;
      continue;
    }
    auto block = w.raw.blocks().Read(index.child);
    if (!block.ok()) {
      absl::StrAppend(&w.out, pad, "  ! cannot read block ", index.child, ": ",
                      StatusText(block.status()), "\n");
      ++w.problems;
      continue;
    }
    ++w.tree_blocks;
    std::string check;
    if (w.raw.sb().metadata_csum()) {
      absl::Status ok = format::VerifyExtentBlockChecksum(
          format::Bytes(**block), w.inode.checksum_seed);
      check = ok.ok() ? ", checksum ok" : ", CHECKSUM BAD";
      if (!ok.ok()) ++w.problems;
    }
    auto child =
        format::ParseExtentNode(format::Bytes(**block), node.header.depth - 1);
    if (!child.ok()) {
      absl::StrAppend(&w.out, pad, "  ! block ", index.child, ": ",
                      StatusText(child.status()), "\n");
      ++w.problems;
      continue;
    }
    absl::StrAppend(&w.out, pad, "  node at block ", index.child, ": depth ",
                    child->header.depth, ", ", child->header.entries, "/",
                    child->header.max, " entries", check, "\n");
    WalkNode(w, *child, indent + 4);
  }
}

absl::Status ShowExtentTree(ExtentWalk& w) {
  const format::Inode& in = w.inode.inode;
  auto root = format::ParseExtentNode(
      format::Bytes(in.block.data(), in.block.size()), -1);
  if (!root.ok()) return root.status();
  absl::StrAppend(&w.out, "extent tree: depth ", root->header.depth, "\n");
  absl::StrAppend(&w.out, "root (in the inode): ", root->header.entries, "/",
                  root->header.max, " entries\n");
  WalkNode(w, *root, 2);
  absl::StrAppend(&w.out, "total: ", w.extents,
                  w.extents == 1 ? " extent, " : " extents, ", w.mapped,
                  " blocks mapped, ", w.tree_blocks, " tree blocks\n");
  return absl::OkStatus();
}

// Collects the indirect blocks of one level's tree (`levels` of pointer
// blocks below `block`), in order.
void IndirectBlocks(ExtentWalk& w, uint32_t block, int levels,
                    std::vector<uint64_t>& out) {
  if (block == 0) return;
  if (block >= w.raw.blocks().block_count()) {
    absl::StrAppend(&w.out, "  ! indirect block ", block,
                    " lies outside the filesystem\n");
    ++w.problems;
    return;
  }
  out.push_back(block);
  if (levels == 1) return;
  auto bytes = w.raw.blocks().Read(block);
  if (!bytes.ok()) {
    absl::StrAppend(&w.out, "  ! cannot read indirect block ", block, ": ",
                    StatusText(bytes.status()), "\n");
    ++w.problems;
    return;
  }
  format::Bytes words(**bytes);
  for (size_t i = 0; i + 4 <= words.size(); i += 4) {
    IndirectBlocks(w, format::Le32(words, i), levels - 1, out);
  }
}

// "1, 5-7, 9".
std::string Ranges(const std::vector<uint64_t>& blocks) {
  std::string out;
  for (size_t i = 0; i < blocks.size();) {
    size_t j = i;
    while (j + 1 < blocks.size() && blocks[j + 1] == blocks[j] + 1) ++j;
    absl::StrAppend(&out, out.empty() ? "" : ", ",
                    Range(blocks[i], blocks[j] - blocks[i] + 1));
    i = j + 1;
  }
  return out;
}

absl::Status ShowBlockMap(ExtentWalk& w) {
  const format::Inode& in = w.inode.inode;
  const uint32_t bs = w.raw.sb().block_size();
  format::Bytes words(in.block.data(), in.block.size());
  absl::StrAppend(&w.out, "block map (indirect)\n");
  std::vector<uint64_t> meta;
  for (int level = 1; level <= 3; ++level) {
    IndirectBlocks(w, format::Le32(words, 4 * (11 + level)), level, meta);
  }
  if (!meta.empty()) {
    absl::StrAppend(&w.out, "indirect blocks (", meta.size(),
                    "): ", Ranges(meta), "\n");
  }
  std::unique_ptr<ext4::FileMap> map = w.raw.Map(w.inode);
  const uint64_t end = (in.size + bs - 1) / bs;
  for (uint64_t logical = 0; logical < end;) {
    E4_ASSIGN_OR_RETURN(ext4::BlockMapping m, map->Map(logical));
    const uint64_t length =
        std::min<uint64_t>(std::max<uint64_t>(m.length, 1), end - logical);
    if (m.physical != 0) {
      absl::StrAppend(&w.out, "  logical ", Range(logical, length),
                      " -> physical ", Range(m.physical, length), " (", length,
                      length == 1 ? " block" : " blocks", ")\n");
      ++w.extents;
      w.mapped += length;
    }
    logical += length;
  }
  absl::StrAppend(&w.out, "total: ", w.extents,
                  w.extents == 1 ? " run, " : " runs, ", w.mapped,
                  " blocks mapped, ", meta.size(), " indirect blocks\n");
  return absl::OkStatus();
}

// ------------------------------------------------------------- htree ----

constexpr char kHtreeUsage[] =
    "Usage: e4 htree [OPTIONS] IMAGE:/dir\n"
    "Shows a directory's hash index (dir_index): the root's hash version and\n"
    "levels, every index entry (hash -> block), and for each leaf block its\n"
    "entry count and hash range. Each name's hash is checked against the\n"
    "range its index entry promises, and index and leaf checksums are\n"
    "verified; problems are listed and make the exit status 2. A directory\n"
    "without an index is reported as linear (or inline).\n"
    "\n"
    "  -v, --verbose  also list every name with its hash and inode\n"
    "  -h, --help     this help\n";

struct HtreeWalk {
  HtreeWalk(RawImage& r, const RawInode& d) : raw(r), dir(d), map(r.Map(d)) {}

  RawImage& raw;
  const RawInode& dir;
  std::unique_ptr<ext4::FileMap> map;
  uint32_t dir_blocks = 0;
  int hash_version = 0;
  std::array<uint32_t, 4> seed{};
  bool verbose = false;
  std::string out;
  std::set<uint32_t> seen;
  uint64_t leaves = 0;
  uint64_t names = 0;
  int problems = 0;
};

absl::StatusOr<ext4::io::BlockRef> DirBlock(HtreeWalk& w, uint32_t logical) {
  if (logical >= w.dir_blocks) {
    return ext4::Corrupt(absl::StrCat("block ", logical,
                                      " is past the directory's end (",
                                      w.dir_blocks, " blocks)"));
  }
  E4_ASSIGN_OR_RETURN(ext4::BlockMapping m, w.map->Map(logical));
  if (m.physical == 0) {
    return ext4::Corrupt(absl::StrCat("block ", logical, " is a hole"));
  }
  return w.raw.blocks().Read(m.physical);
}

void Problem(HtreeWalk& w, const std::string& pad, const std::string& text) {
  absl::StrAppend(&w.out, pad, "! ", text, "\n");
  ++w.problems;
}

// A leaf holding names whose hashes lie in [low, high] (high inclusive).
void WalkLeaf(HtreeWalk& w, uint32_t logical, uint32_t low, uint64_t high,
              const std::string& pad) {
  auto block = DirBlock(w, logical);
  if (!block.ok()) {
    Problem(w, pad,
            absl::StrCat("leaf ", logical, ": ", StatusText(block.status())));
    return;
  }
  ++w.leaves;
  format::Bytes bytes(**block);
  const bool csum = w.raw.sb().metadata_csum();
  std::string check;
  if (csum) {
    absl::Status ok =
        format::VerifyDirBlockChecksum(bytes, w.dir.checksum_seed);
    check = ok.ok() ? ", checksum ok" : ", CHECKSUM BAD";
    if (!ok.ok()) ++w.problems;
  }
  auto entries = format::ParseDirBlock(bytes, csum);
  if (!entries.ok()) {
    Problem(w, pad,
            absl::StrCat("leaf ", logical, ": ", StatusText(entries.status())));
    return;
  }
  uint32_t min_hash = UINT32_MAX, max_hash = 0;
  std::string lines;
  for (const format::RawDirEntry& e : *entries) {
    ++w.names;
    auto hash = format::ComputeDxHash(e.name, w.hash_version, w.seed);
    if (!hash.ok()) {
      Problem(w, pad,
              absl::StrCat("cannot hash ", Quote(e.name), ": ",
                           StatusText(hash.status())));
      continue;
    }
    min_hash = std::min(min_hash, hash->major);
    max_hash = std::max(max_hash, hash->major);
    if (w.verbose) {
      absl::StrAppend(&lines, pad, "  ", Hex32(hash->major), ":",
                      Hex32(hash->minor), " ", Quote(e.name), " (inode ",
                      e.inode, ")\n");
    }
    if (hash->major < low || hash->major > high) {
      absl::StrAppend(&lines, pad, "  ! ", Quote(e.name), " hashes to ",
                      Hex32(hash->major), ", outside this leaf's range\n");
      ++w.problems;
    }
  }
  absl::StrAppend(&w.out, pad, "leaf block ", logical, ": ", entries->size(),
                  " entries");
  if (!entries->empty()) {
    absl::StrAppend(&w.out, ", hashes ", Hex32(min_hash), "-", Hex32(max_hash));
  }
  absl::StrAppend(&w.out, check, "\n", lines);
}

void WalkIndex(HtreeWalk& w, const format::DxEntries& entries, int level,
               uint64_t high, const std::string& pad) {
  for (size_t i = 0; i < entries.count(); ++i) {
    const uint32_t hash = entries.hash(i);
    const uint32_t block = entries.block(i);
    // The next entry's hash bounds this subtree; with its low bit set
    // (a collision continued in the next block) names of that very hash may
    // still be here.
    uint64_t upper = high;
    if (i + 1 < entries.count()) {
      const uint32_t next = entries.hash(i + 1);
      upper = (next & 1) ? (next & ~1u) : uint64_t{next} - 1;
    }
    absl::StrAppend(&w.out, pad, "entry ", i, ": hash ", Hex32(hash),
                    " -> block ", block, "\n");
    if (!w.seen.insert(block).second) {
      Problem(w, pad + "  ",
              absl::StrCat("block ", block, " is referenced more than once"));
      continue;
    }
    if (level == 0) {
      WalkLeaf(w, block, hash & ~1u, upper, pad + "  ");
      continue;
    }
    auto node_block = DirBlock(w, block);
    if (!node_block.ok()) {
      Problem(w, pad + "  ",
              absl::StrCat("index block ", block, ": ",
                           StatusText(node_block.status())));
      continue;
    }
    format::Bytes bytes(**node_block);
    auto node = format::ParseDxNode(bytes, w.raw.sb().metadata_csum());
    if (!node.ok()) {
      Problem(
          w, pad + "  ",
          absl::StrCat("index block ", block, ": ", StatusText(node.status())));
      continue;
    }
    std::string check;
    if (w.raw.sb().metadata_csum()) {
      absl::Status ok = format::VerifyDxChecksum(bytes, w.dir.checksum_seed);
      check = ok.ok() ? ", checksum ok" : ", CHECKSUM BAD";
      if (!ok.ok()) ++w.problems;
    }
    absl::StrAppend(&w.out, pad, "  index block ", block, ": ", node->count(),
                    "/", node->limit(), " entries", check, "\n");
    WalkIndex(w, *node, level - 1, upper, pad + "    ");
  }
}

std::string HashVersionName(int version) {
  static const char* const kNames[] = {
      "legacy",       "half_md4", "tea", "legacy_unsigned", "half_md4_unsigned",
      "tea_unsigned", "siphash"};
  return version >= 0 && version < 7 ? kNames[version]
                                     : absl::StrCat("unknown (", version, ")");
}

absl::Status ShowHtree(HtreeWalk& w) {
  const format::Superblock& sb = w.raw.sb();
  E4_ASSIGN_OR_RETURN(ext4::io::BlockRef root_block, DirBlock(w, 0));
  format::Bytes bytes(*root_block);
  E4_ASSIGN_OR_RETURN(
      format::DxRoot root,
      format::ParseDxRoot(bytes, sb.metadata_csum(),
                          sb.has_incompat(format::kIncompatLargeDir)));
  w.hash_version = root.hash_version;
  if (sb.hash_unsigned() && w.hash_version <= format::kHashTea) {
    w.hash_version += 3;
  }
  for (int i = 0; i < 4; ++i) w.seed[static_cast<size_t>(i)] = sb.hash_seed[i];
  std::string check;
  if (sb.metadata_csum()) {
    absl::Status ok = format::VerifyDxChecksum(bytes, w.dir.checksum_seed);
    check = ok.ok() ? ", checksum ok" : ", CHECKSUM BAD";
    if (!ok.ok()) ++w.problems;
  }
  absl::StrAppend(&w.out, "hash index: ", HashVersionName(w.hash_version),
                  " hash, ", static_cast<int>(root.indirect_levels),
                  root.indirect_levels == 1 ? " index level" : " index levels",
                  " below the root\n");
  absl::StrAppend(&w.out, "root (block 0): ", root.entries.count(), "/",
                  root.entries.limit(), " entries", check, "\n");
  w.seen.insert(0);
  WalkIndex(w, root.entries, root.indirect_levels, UINT32_MAX, "  ");
  absl::StrAppend(&w.out, "total: ", w.leaves, " leaf blocks, ", w.names,
                  " names, ", w.problems,
                  w.problems == 1 ? " problem\n" : " problems\n");
  return absl::OkStatus();
}

std::string Header(const Target& t, const std::string& image) {
  const format::Inode& in = t.inode.inode;
  return absl::StrCat(image, ":", t.path, ": inode ", t.inode.ino, ", ",
                      TypeName(in.mode), ", ", in.size, " bytes\n");
}

}  // namespace

int RunExtents(int argc, char** argv) {
  Command cmd("extents", kExtentsUsage);
  bool follow = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "L", {{"dereference", no_argument, nullptr, 'L'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'L') follow = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() != 1) return cmd.UsageError("expected one IMAGE:/path");
  auto where = ParseImagePath(operands[0]);
  if (!where.ok()) return cmd.UsageError(std::string(where.status().message()));
  ImageSet images(/*writable=*/false);
  auto target = Open(images, *where, follow);
  if (!target.ok()) {
    return cmd.Fail(Display(*where) + ": " + StatusText(target.status()));
  }
  const format::Inode& in = target->inode.inode;
  ExtentWalk w(*target->raw, target->inode, Header(*target, where->image));
  if (in.file_acl != 0) {
    absl::StrAppend(&w.out, "xattr block at ", in.file_acl, "\n");
  }
  absl::Status status = absl::OkStatus();
  if (in.has_inline_data()) {
    absl::StrAppend(&w.out,
                    "inline data: the contents live in the inode "
                    "(and its system.data xattr), no blocks\n");
  } else if (in.is_symlink() && in.size < format::kInodeBlockSize &&
             !in.uses_extents() &&
             in.blocks == (in.file_acl != 0
                               ? target->raw->sb().block_size() / 512
                               : 0)) {
    absl::StrAppend(&w.out,
                    "fast symlink: the target lives in the inode, no "
                    "blocks\n");
  } else if (!in.is_reg() && !in.is_dir() && !in.is_symlink()) {
    absl::StrAppend(&w.out, "no data blocks (", TypeName(in.mode), ")\n");
  } else if (in.uses_extents()) {
    status = ShowExtentTree(w);
  } else {
    status = ShowBlockMap(w);
  }
  std::fwrite(w.out.data(), 1, w.out.size(), stdout);
  if (std::fflush(stdout) != 0) return cmd.Fail("writing to stdout failed");
  if (!status.ok()) {
    return cmd.Fail(Display(*where) + ": " + StatusText(status));
  }
  if (w.problems > 0) {
    return cmd.Fail(absl::StrCat(Display(*where), ": ", w.problems,
                                 " problems in the extent tree"));
  }
  return kExitOk;
}

int RunHtree(int argc, char** argv) {
  Command cmd("htree", kHtreeUsage);
  bool verbose = false;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "v", {{"verbose", no_argument, nullptr, 'v'}},
          [&](int c, const char*) -> std::optional<int> {
            if (c == 'v') verbose = true;
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.size() != 1) return cmd.UsageError("expected one IMAGE:/dir");
  auto where = ParseImagePath(operands[0]);
  if (!where.ok()) return cmd.UsageError(std::string(where.status().message()));
  ImageSet images(/*writable=*/false);
  auto target = Open(images, *where, /*follow=*/true);
  if (!target.ok()) {
    return cmd.Fail(Display(*where) + ": " + StatusText(target.status()));
  }
  const format::Inode& in = target->inode.inode;
  if (!in.is_dir()) {
    return cmd.Fail(Display(*where) + ": " + std::strerror(ENOTDIR));
  }
  HtreeWalk w(*target->raw, target->inode);
  w.verbose = verbose;
  w.out = Header(*target, where->image);
  const uint32_t bs = target->raw->sb().block_size();
  w.dir_blocks =
      static_cast<uint32_t>(std::min<uint64_t>(in.size / bs, UINT32_MAX));
  absl::Status status = absl::OkStatus();
  if (in.has_inline_data()) {
    absl::StrAppend(&w.out,
                    "inline directory: its entries live in the "
                    "inode, no hash index\n");
  } else if (!(in.flags & format::kInodeFlagIndex)) {
    absl::StrAppend(&w.out, "linear directory: ", w.dir_blocks,
                    w.dir_blocks == 1 ? " block" : " blocks",
                    ", no hash index\n");
  } else if (!target->raw->sb().has_compat(format::kCompatDirIndex)) {
    absl::StrAppend(&w.out,
                    "the directory has the index flag but the "
                    "filesystem lacks dir_index: read linearly\n");
  } else {
    status = ShowHtree(w);
  }
  std::fwrite(w.out.data(), 1, w.out.size(), stdout);
  if (std::fflush(stdout) != 0) return cmd.Fail("writing to stdout failed");
  if (!status.ok()) {
    return cmd.Fail(Display(*where) + ": " + StatusText(status));
  }
  if (w.problems > 0) {
    return cmd.Fail(absl::StrCat(Display(*where), ": ", w.problems,
                                 " problems in the hash index"));
  }
  return kExitOk;
}

}  // namespace e4cli
