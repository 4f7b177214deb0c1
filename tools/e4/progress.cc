#include "tools/e4/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "tools/e4/text_format.h"

namespace e4cli {

bool ProgressWanted(ProgressMode mode) {
  switch (mode) {
    case ProgressMode::kAlways:
      return true;
    case ProgressMode::kNever:
      return false;
    case ProgressMode::kAuto:
      break;
  }
  return isatty(STDERR_FILENO) == 1;
}

Progress::Progress(bool enabled, uint64_t total_bytes, uint64_t total_entries)
    : enabled_(enabled),
      total_bytes_(total_bytes),
      total_entries_(total_entries) {}

Progress::~Progress() { Finish(); }

void Progress::Finish() {
  if (!enabled_ || finished_) return;
  Draw(/*force=*/true);
  std::fputs("\n", stderr);
  std::fflush(stderr);
  drawn_ = false;
  finished_ = true;
}

void Progress::AddBytes(uint64_t bytes) {
  bytes_ += bytes;
  Draw(false);
}

void Progress::AddEntry() {
  ++entries_;
  Draw(false);
}

void Progress::Clear() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
  // The next draw happens at once, so a cleared bar comes back.
  last_ = {};
}

void Progress::Draw(bool force) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  constexpr int kWidth = 24;
  // Bytes give the better measure; entries when there are none.
  double fraction = 0;
  if (total_bytes_ > 0) {
    fraction = static_cast<double>(bytes_) / static_cast<double>(total_bytes_);
  } else if (total_entries_ > 0) {
    fraction =
        static_cast<double>(entries_) / static_cast<double>(total_entries_);
  }
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  char entries[64];
  if (total_entries_ > 0) {
    std::snprintf(entries, sizeof(entries), "%" PRIu64 "/%" PRIu64 " entries",
                  entries_, total_entries_);
  } else {
    std::snprintf(entries, sizeof(entries), "%" PRIu64 " entries", entries_);
  }
  std::string bytes = HumanBytes(bytes_);
  if (total_bytes_ > 0) bytes += "/" + HumanBytes(total_bytes_);
  std::fprintf(stderr, "\r\033[K[%s] %3d%%  %s  %s", bar.c_str(),
               static_cast<int>(fraction * 100), entries, bytes.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace e4cli
