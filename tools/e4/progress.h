// A one-line progress bar on stderr for get and put:
//   [########............]  41%  1234/3000 files  12.3 MiB/30.0 MiB
// drawn at most ten times a second, and erased when done. It is only drawn
// when asked to (by default: when stderr is a terminal).
#ifndef E4FS_TOOLS_E4_PROGRESS_H_
#define E4FS_TOOLS_E4_PROGRESS_H_

#include <chrono>
#include <cstdint>

namespace e4cli {

// --progress / --no-progress / neither.
enum class ProgressMode { kAuto, kAlways, kNever };

// Whether to draw: kAuto draws when stderr is a terminal.
bool ProgressWanted(ProgressMode mode);

class Progress {
 public:
  // Nothing is drawn unless `enabled`. Totals of 0 are unknown.
  Progress(bool enabled, uint64_t total_bytes, uint64_t total_entries);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void AddBytes(uint64_t bytes);
  void AddEntry();
  // Erases the line; the next update draws it again. Call before printing
  // anything else to stderr.
  void Clear();
  // Draws the final state and ends the line (also done by the destructor).
  void Finish();

 private:
  void Draw(bool force);

  const bool enabled_;
  const uint64_t total_bytes_;
  const uint64_t total_entries_;
  uint64_t bytes_ = 0;
  uint64_t entries_ = 0;
  bool drawn_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_PROGRESS_H_
