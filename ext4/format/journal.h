// The jbd2 journal's on-disk blocks: the journal superblock, descriptor
// blocks with their block tags, commit blocks and revoke blocks. Every field
// is big-endian. A journal block starts with a 12-byte header (magic, block
// type, transaction sequence); the data blocks a descriptor describes carry
// no header (a data block that starts with the magic is stored "escaped":
// its first four bytes zeroed and the tag flagged).
//
// Checksums (crc32c, raw register as in ext4, stored big-endian):
//  - superblock: crc32c(~0, the 1024-byte superblock with s_checksum = 0);
//  - everything else starts from the journal seed crc32c(~0, s_uuid):
//    descriptor and revoke blocks keep crc32c(seed, block with tail = 0) in
//    their last four bytes, a commit block crc32c(seed, block with
//    h_chksum[0] = 0) in h_chksum[0], and each tag the checksum of its data
//    block: crc32c(crc32c(seed, be32 sequence), block as logged), 32 bits
//    in a v3 tag, the low 16 bits in a v2 tag.
//  - the older COMPAT_CHECKSUM ("v1") keeps one crc32_be over a
//    transaction's descriptor and data blocks in its commit block.
#ifndef E4FS_EXT4_FORMAT_JOURNAL_H_
#define E4FS_EXT4_FORMAT_JOURNAL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ext4/format/endian.h"

namespace ext4::format {

inline constexpr uint32_t kJournalMagic = 0xC03B3998;

// h_blocktype.
inline constexpr uint32_t kJournalDescriptorBlock = 1;
inline constexpr uint32_t kJournalCommitBlock = 2;
inline constexpr uint32_t kJournalSuperblockV1 = 3;
inline constexpr uint32_t kJournalSuperblockV2 = 4;
inline constexpr uint32_t kJournalRevokeBlock = 5;

inline constexpr size_t kJournalHeaderSize = 12;
inline constexpr size_t kJournalSuperblockSize = 1024;
inline constexpr size_t kJournalSuperblockChecksumOffset = 0xFC;
inline constexpr size_t kJournalUuidSize = 16;
// The commit header up to and including h_commit_nsec.
inline constexpr size_t kJournalCommitHeaderSize = 60;
// Header plus r_count.
inline constexpr size_t kJournalRevokeHeaderSize = 16;
// The crc32c tail of descriptor and revoke blocks (csum v2/v3).
inline constexpr size_t kJournalBlockTailSize = 4;

// The smallest journal the kernel loads (JBD2_MIN_JOURNAL_BLOCKS), not
// counting fast-commit blocks.
inline constexpr uint32_t kJournalMinBlocks = 1024;
// Fast-commit blocks when the feature is on and s_num_fc_blks is 0.
inline constexpr uint32_t kJournalDefaultFastCommitBlocks = 256;

// Features (meaningful in a v2 superblock only).
inline constexpr uint32_t kJournalCompatChecksum = 0x1;
inline constexpr uint32_t kJournalIncompatRevoke = 0x1;
inline constexpr uint32_t kJournalIncompat64Bit = 0x2;
inline constexpr uint32_t kJournalIncompatAsyncCommit = 0x4;
inline constexpr uint32_t kJournalIncompatCsumV2 = 0x8;
inline constexpr uint32_t kJournalIncompatCsumV3 = 0x10;
inline constexpr uint32_t kJournalIncompatFastCommit = 0x20;
inline constexpr uint32_t kJournalKnownIncompat = 0x3F;
inline constexpr uint32_t kJournalKnownRoCompat = 0;

// s_checksum_type / h_chksum_type.
inline constexpr uint8_t kJournalChecksumCrc32 = 1;
inline constexpr uint8_t kJournalChecksumMd5 = 2;
inline constexpr uint8_t kJournalChecksumSha1 = 3;
inline constexpr uint8_t kJournalChecksumCrc32c = 4;
inline constexpr uint8_t kJournalCrc32ChecksumSize = 4;

// Block tag flags.
inline constexpr uint32_t kJournalTagEscape = 0x1;
inline constexpr uint32_t kJournalTagSameUuid = 0x2;
inline constexpr uint32_t kJournalTagDeleted = 0x4;
inline constexpr uint32_t kJournalTagLastTag = 0x8;

struct JournalHeader {
  uint32_t blocktype = 0;
  uint32_t sequence = 0;
};

// The header of a journal block; nullopt when the block is shorter than a
// header or does not start with kJournalMagic.
std::optional<JournalHeader> ParseJournalHeader(Bytes block);
// Writes magic, blocktype and sequence into the first 12 bytes.
void PutJournalHeader(MutableBytes block, uint32_t blocktype,
                      uint32_t sequence);

struct JournalSuperblock {
  uint32_t blocktype = kJournalSuperblockV2;  // header: v1 or v2
  uint32_t header_sequence = 0;               // header: h_sequence
  uint32_t block_size = 0;                    // s_blocksize
  uint32_t max_len = 0;                       // s_maxlen: blocks in journal
  uint32_t first = 0;                         // s_first: first block of the log
  uint32_t sequence = 0;  // s_sequence: first transaction expected
  uint32_t start = 0;     // s_start: log start; 0 = clean
  uint32_t error = 0;     // s_errno (a negative errno, or 0)
  uint32_t feature_compat = 0;
  uint32_t feature_incompat = 0;
  uint32_t feature_ro_compat = 0;
  std::array<uint8_t, kJournalUuidSize> uuid{};
  uint32_t nr_users = 0;
  uint32_t dyn_super = 0;
  uint32_t max_transaction = 0;
  uint32_t max_trans_data = 0;
  uint8_t checksum_type = 0;
  uint32_t num_fc_blks = 0;  // s_num_fc_blks
  uint32_t head = 0;         // s_head: log head while the fs is clean
  uint32_t checksum = 0;     // s_checksum

  bool is_v2() const { return blocktype == kJournalSuperblockV2; }
  // A v1 superblock has no feature words: every feature reads as off.
  bool has_compat(uint32_t mask) const {
    return is_v2() && (feature_compat & mask) != 0;
  }
  bool has_incompat(uint32_t mask) const {
    return is_v2() && (feature_incompat & mask) != 0;
  }
  bool compat_checksum() const { return has_compat(kJournalCompatChecksum); }
  bool revoke() const { return has_incompat(kJournalIncompatRevoke); }
  bool has_64bit() const { return has_incompat(kJournalIncompat64Bit); }
  bool async_commit() const {
    return has_incompat(kJournalIncompatAsyncCommit);
  }
  bool csum_v2() const { return has_incompat(kJournalIncompatCsumV2); }
  bool csum_v3() const { return has_incompat(kJournalIncompatCsumV3); }
  bool csum_v2_or_v3() const { return csum_v2() || csum_v3(); }
  bool fast_commit() const { return has_incompat(kJournalIncompatFastCommit); }

  // crc32c(~0, uuid): where every checksum but the superblock's starts.
  uint32_t ChecksumSeed() const;
  // Fast-commit blocks at the end of the journal: 0 without the feature,
  // else s_num_fc_blks, or 256 when that is 0.
  uint32_t num_fc_blocks() const;
  // One past the last block of the circular log (the kernel's j_last):
  // max_len, less the fast-commit blocks. The log wraps from here back to
  // `first`. With fast commits, the fast-commit area is
  // [log_end() + 1, max_len): the block at log_end() itself is used by
  // neither, exactly as in the kernel.
  // 0 when the fast-commit area does not fit (never on a parsed superblock).
  uint32_t log_end() const {
    const uint32_t fc = num_fc_blocks();
    return max_len > fc ? max_len - fc : 0;
  }
};

// Parses and validates the first 1024 bytes of the journal's block 0:
// EUCLEAN for a short buffer, a bad magic, a block type other than v1/v2, a
// block size that is not a power of two in [1024, 65536], a journal shorter
// than kJournalMinBlocks (plus its fast-commit blocks), s_first == 0 or not
// below log_end(), s_start neither 0 nor inside [s_first, log_end()), csum
// v2 together with v3 or with COMPAT_CHECKSUM, a checksum type other than
// crc32c under v2/v3, and (through ChecksumMismatch) a bad superblock
// checksum. EOPNOTSUPP for unknown incompat or ro_compat features of a v2
// superblock, which the kernel refuses to load. Whether s_blocksize matches
// the filesystem is for the caller to check.
absl::StatusOr<JournalSuperblock> ParseJournalSuperblock(Bytes raw);

// Writes the fields above into the first 1024 bytes of `out` (nothing if it
// is shorter), leaving every other byte alone, so the caller passes the
// original block and unknown fields survive. Under csum v2/v3 s_checksum is
// recomputed; otherwise `checksum` is written as it is.
void SerializeJournalSuperblock(const JournalSuperblock& jsb, MutableBytes out);

// The superblock checksum over the first 1024 bytes of `raw` (s_checksum
// taken as 0). raw.size() >= 1024.
uint32_t JournalSuperblockChecksum(Bytes raw);

// ---- Descriptor blocks ------------------------------------------------------

// One block tag. `checksum` is the 32-bit checksum of a v3 tag, the 16-bit
// one of a v2 tag, and 0 without csum v2/v3.
struct JournalTag {
  uint64_t block = 0;  // filesystem block the logged data belongs to
  uint32_t flags = 0;  // kJournalTag*
  uint32_t checksum = 0;
};

// Bytes per tag (the kernel's journal_tag_bytes()): 16 with csum v3;
// otherwise 8, +4 with 64bit, +2 with csum v2 (so 8, 10, 12 or 14).
size_t JournalTagBytes(const JournalSuperblock& jsb);

// 4 when descriptor and revoke blocks carry a crc32c tail (csum v2/v3).
size_t JournalBlockTailBytes(const JournalSuperblock& jsb);

// Whether the tail checksum of a descriptor or revoke block matches; always
// true without csum v2/v3. False for a block too short to hold a tail.
bool JournalBlockTailValid(const JournalSuperblock& jsb, Bytes block);
// Computes and stores the tail checksum (does nothing without csum v2/v3).
void SetJournalBlockTail(const JournalSuperblock& jsb, MutableBytes block);

// The tags of a descriptor block, read the way recovery reads them: from
// byte 12 while a whole tag fits before the tail, skipping the 16-byte UUID
// after any tag without SAME_UUID, and stopping after LAST_TAG. Every tag
// returned stands for one journal block after the descriptor. Checks
// neither the header nor the tail: a hostile block gives at most
// (size - 12) / JournalTagBytes() tags. The high half of a block number is
// used only with the 64bit feature.
std::vector<JournalTag> ParseDescriptorTags(const JournalSuperblock& jsb,
                                            Bytes block);

// A whole descriptor block: EUCLEAN without the magic or with another block
// type, EBADMSG (the kernel's EFSBADCRC) when the v2/v3 tail checksum does
// not match (counted and ignored in fuzz builds), then the tags as above.
absl::StatusOr<std::vector<JournalTag>> ParseDescriptor(
    const JournalSuperblock& jsb, Bytes block);

// How many tags one descriptor of `block_size` bytes holds when the first
// tag is followed by the UUID and every other carries SAME_UUID, leaving
// room for the tail under csum v2/v3. 0 if not even one fits.
size_t DescriptorTagCapacity(const JournalSuperblock& jsb, uint32_t block_size);

// A descriptor block of `block_size` bytes for `tags` (at most
// DescriptorTagCapacity(); any beyond are not written). Each tag keeps its
// ESCAPE and DELETED flags and its checksum; SAME_UUID is set on all but the
// first, which is followed by the journal UUID, and LAST_TAG on the last.
// Block numbers must fit the tag (32 bits without 64bit). The tail checksum
// is set under csum v2/v3.
std::vector<uint8_t> EncodeDescriptor(const JournalSuperblock& jsb,
                                      uint32_t sequence,
                                      std::span<const JournalTag> tags,
                                      uint32_t block_size);

// The checksum a tag carries for its data block: crc32c(crc32c(seed,
// be32(sequence)), data), over the data as logged (escaped). A v2 tag keeps
// the low 16 bits. 0 without csum v2/v3.
uint32_t DataBlockChecksum(const JournalSuperblock& jsb, uint32_t sequence,
                           Bytes data);
// Whether `tag` matches its logged data block (true without csum v2/v3).
bool DataBlockChecksumMatches(const JournalSuperblock& jsb,
                              const JournalTag& tag, uint32_t sequence,
                              Bytes data);

// A block to be logged that starts with the journal magic must be escaped:
// the writer zeroes its first four bytes and sets kJournalTagEscape; replay
// puts the magic back.
bool NeedsEscape(Bytes data);

// ---- Commit blocks ----------------------------------------------------------

struct JournalCommit {
  uint32_t sequence = 0;
  uint8_t checksum_type = 0;  // h_chksum_type
  uint8_t checksum_size = 0;  // h_chksum_size
  uint32_t checksum = 0;      // h_chksum[0]
  uint64_t seconds = 0;       // h_commit_sec
  uint32_t nanoseconds = 0;   // h_commit_nsec
};

// A commit block of `block_size` bytes (zeros beyond the header). Under
// csum v2/v3 h_chksum[0] is the block checksum; with COMPAT_CHECKSUM it is
// `transaction_crc32` (see TransactionCrc32Update) with type crc32, size 4.
std::vector<uint8_t> EncodeCommit(const JournalSuperblock& jsb,
                                  uint32_t sequence, uint64_t seconds,
                                  uint32_t nanoseconds, uint32_t block_size,
                                  uint32_t transaction_crc32 = 0);

// Whether a commit block's v2/v3 checksum matches (true without csum
// v2/v3). Like the kernel, also accepts the checksum of the block with
// everything after the 60-byte header taken as zeros, which older kernels
// wrote over a block they had not cleared.
bool CommitChecksumValid(const JournalSuperblock& jsb, Bytes block);

// A commit block's fields: EUCLEAN for a block shorter than the commit
// header, without the magic or of another type; EBADMSG when the v2/v3
// checksum does not match (counted and ignored in fuzz builds). The
// COMPAT_CHECKSUM sum covers the whole transaction and is the caller's.
absl::StatusOr<JournalCommit> ParseCommit(const JournalSuperblock& jsb,
                                          Bytes block);

// The kernel's crc32_be(): CRC-32 (polynomial 0x04C11DB7), most significant
// bit first, no reflection and no final inversion.
uint32_t Crc32Be(uint32_t crc, Bytes data);
// COMPAT_CHECKSUM: a transaction's sum starts at ~0 and takes in each
// descriptor block and then each data block it describes, whole, as logged.
inline uint32_t TransactionCrc32Update(uint32_t crc, Bytes block) {
  return Crc32Be(crc, block);
}

// ---- Revoke blocks ----------------------------------------------------------

// The block numbers a revoke block lists: 4-byte records (8 with 64bit)
// from byte 16 up to r_count, a partial last record ignored, r_count below
// 16 giving none. EUCLEAN when r_count runs into the tail (or past the
// block), which makes the kernel's recovery fail. Checks neither the header
// nor the tail checksum.
absl::StatusOr<std::vector<uint64_t>> ParseRevokeRecords(
    const JournalSuperblock& jsb, Bytes block);

// A whole revoke block: header (EUCLEAN), tail checksum (EBADMSG, counted
// and ignored in fuzz builds), then the records.
absl::StatusOr<std::vector<uint64_t>> ParseRevoke(const JournalSuperblock& jsb,
                                                  Bytes block);

// Records one revoke block of `block_size` bytes holds.
size_t RevokeCapacity(const JournalSuperblock& jsb, uint32_t block_size);

// A revoke block for `blocks` (at most RevokeCapacity(); any beyond are not
// written), r_count = 16 + records * record size, tail set under v2/v3.
std::vector<uint8_t> EncodeRevoke(const JournalSuperblock& jsb,
                                  uint32_t sequence,
                                  std::span<const uint64_t> blocks,
                                  uint32_t block_size);

}  // namespace ext4::format

#endif  // E4FS_EXT4_FORMAT_JOURNAL_H_
