#include "ext4/journal/journal_writer.h"

#include <time.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"

namespace ext4::journal {

JournalWriter::JournalWriter(io::BlockDevice& device, LogMap map,
                             const JournalWriterOptions& options)
    : device_(device), map_(std::move(map)), options_(options) {}

absl::StatusOr<std::unique_ptr<JournalWriter>> JournalWriter::Open(
    io::BlockDevice& device, LogMap map, const JournalWriterOptions& options) {
  const uint32_t bs = options.fs_block_size;
  if (map.size() == 0) return Corrupt("the journal is empty");
  std::unique_ptr<JournalWriter> writer(
      new JournalWriter(device, std::move(map), options));
  writer->jsb_block_.resize(bs);
  E4_ASSIGN_OR_RETURN(uint64_t physical, writer->map_.Physical(0));
  E4_RETURN_IF_ERROR(device.ReadAt(physical * bs, writer->jsb_block_));
  E4_ASSIGN_OR_RETURN(writer->jsb_,
                      format::ParseJournalSuperblock(writer->jsb_block_));
  format::JournalSuperblock& jsb = writer->jsb_;
  if (jsb.block_size != bs) {
    return ErrnoError(EOPNOTSUPP,
                      "the journal's block size differs from the filesystem's");
  }
  if (jsb.start != 0) {
    return ErrnoError(EAGAIN, "the journal needs recovery");
  }
  if (jsb.max_len > writer->map_.size()) {
    return Corrupt(
        "the journal superblock claims more blocks than the "
        "journal inode has");
  }
  if (jsb.is_v2()) {
    // The features ext4 turns on when it mounts: revoke records understood,
    // 64-bit block numbers on a 64-bit filesystem, v3 checksums with
    // metadata_csum. Asynchronous commits and v1 commit checksums are never
    // written here.
    jsb.feature_incompat |= format::kJournalIncompatRevoke;
    if (options.fs_64bit) jsb.feature_incompat |= format::kJournalIncompat64Bit;
    jsb.feature_incompat &= ~format::kJournalIncompatAsyncCommit;
    jsb.feature_compat &= ~format::kJournalCompatChecksum;
    if (options.metadata_csum) {
      jsb.feature_incompat &= ~format::kJournalIncompatCsumV2;
      jsb.feature_incompat |= format::kJournalIncompatCsumV3;
      jsb.checksum_type = format::kJournalChecksumCrc32c;
    }
  } else if (options.fs_64bit) {
    return ErrnoError(EOPNOTSUPP,
                      "a version 1 journal cannot log 64-bit block numbers");
  }
  const uint64_t log_blocks = jsb.log_end() - jsb.first;
  const uint64_t tags =
      format::DescriptorTagCapacity(jsb, options.fs_block_size);
  if (tags == 0 || log_blocks < 4) return Corrupt("the journal is too small");
  // n blocks need n + ceil(n / tags) + 1 log blocks.
  writer->capacity_ = (log_blocks - 1) * tags / (tags + 1);
  E4_RETURN_IF_ERROR(writer->WriteJournalSuperblock(0));
  E4_RETURN_IF_ERROR(device.Flush());
  return writer;
}

absl::Status JournalWriter::WriteJournalSuperblock(uint32_t start) {
  jsb_.start = start;
  format::SerializeJournalSuperblock(jsb_, jsb_block_);
  return WriteLog(0, jsb_block_);
}

absl::Status JournalWriter::WriteLog(uint64_t index,
                                     std::span<const uint8_t> data) {
  const uint32_t bs = options_.fs_block_size;
  while (!data.empty()) {
    E4_ASSIGN_OR_RETURN(uint64_t physical, map_.Physical(index));
    const uint64_t run =
        std::min<uint64_t>(map_.ContiguousFrom(index), data.size() / bs);
    E4_RETURN_IF_ERROR(device_.WriteAt(physical * bs, data.first(run * bs)));
    data = data.subspan(run * bs);
    index += run;
  }
  return absl::OkStatus();
}

absl::Status JournalWriter::WriteInPlace(
    const std::map<uint64_t, io::BlockRef>& blocks) {
  // Runs of consecutive blocks go out as one write each.
  const uint32_t bs = options_.fs_block_size;
  std::vector<uint8_t> run;
  uint64_t run_start = 0;
  uint64_t next = 0;
  auto flush_run = [&]() -> absl::Status {
    if (run.empty()) return absl::OkStatus();
    absl::Status status = device_.WriteAt(run_start * bs, run);
    run.clear();
    return status;
  };
  for (const auto& [block, bytes] : blocks) {
    if (run.empty() || block != next || run.size() >= (size_t{1} << 20)) {
      E4_RETURN_IF_ERROR(flush_run());
      run_start = block;
    }
    run.insert(run.end(), bytes->begin(), bytes->end());
    next = block + 1;
  }
  return flush_run();
}

absl::Status JournalWriter::Commit(
    const std::map<uint64_t, io::BlockRef>& blocks) {
  if (blocks.empty()) return absl::OkStatus();
  const uint32_t bs = options_.fs_block_size;
  if (blocks.size() > capacity_) {
    if (!warned_oversize_) {
      std::fprintf(stderr,
                   "e4fs: a transaction of %zu blocks does not fit the "
                   "journal (%llu); writing it in place\n",
                   blocks.size(), static_cast<unsigned long long>(capacity_));
      warned_oversize_ = true;
    }
    E4_RETURN_IF_ERROR(device_.Flush());
    E4_RETURN_IF_ERROR(WriteInPlace(blocks));
    return device_.Flush();
  }

  const uint32_t sequence = jsb_.sequence;
  // The superblock names the log's start first: recovery begins there.
  E4_RETURN_IF_ERROR(WriteJournalSuperblock(jsb_.first));

  const size_t per_descriptor = format::DescriptorTagCapacity(jsb_, bs);
  uint64_t index = jsb_.first;
  auto it = blocks.begin();
  std::vector<uint8_t> chunk;
  while (it != blocks.end()) {
    std::vector<format::JournalTag> tags;
    chunk.assign(bs, 0);  // the descriptor's place, filled in below
    for (; it != blocks.end() && tags.size() < per_descriptor; ++it) {
      format::JournalTag tag;
      tag.block = it->first;
      const size_t at = chunk.size();
      chunk.insert(chunk.end(), it->second->begin(), it->second->end());
      format::MutableBytes logged(chunk.data() + at, bs);
      if (format::NeedsEscape(logged)) {
        std::memset(logged.data(), 0, 4);
        tag.flags |= format::kJournalTagEscape;
      }
      tag.checksum = format::DataBlockChecksum(jsb_, sequence, logged);
      tags.push_back(tag);
    }
    std::vector<uint8_t> descriptor =
        format::EncodeDescriptor(jsb_, sequence, tags, bs);
    std::memcpy(chunk.data(), descriptor.data(), bs);
    E4_RETURN_IF_ERROR(WriteLog(index, chunk));
    index += tags.size() + 1;
  }
  // Everything before the commit block -- the log and the file data the
  // transaction's metadata points at -- is durable before it.
  E4_RETURN_IF_ERROR(device_.Flush());
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  std::vector<uint8_t> commit =
      format::EncodeCommit(jsb_, sequence, static_cast<uint64_t>(now.tv_sec),
                           static_cast<uint32_t>(now.tv_nsec), bs);
  E4_RETURN_IF_ERROR(WriteLog(index, commit));
  E4_RETURN_IF_ERROR(device_.Flush());

  // The checkpoint.
  E4_RETURN_IF_ERROR(WriteInPlace(blocks));
  E4_RETURN_IF_ERROR(device_.Flush());
  jsb_.sequence = sequence + 1;
  E4_RETURN_IF_ERROR(WriteJournalSuperblock(0));
  ++commits_;
  return absl::OkStatus();
}

}  // namespace ext4::journal
