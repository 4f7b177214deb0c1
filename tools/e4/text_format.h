// How e4 prints file metadata: modes as ls does, type names, times, sizes,
// and byte strings made safe for a terminal.
#ifndef E4FS_TOOLS_E4_TEXT_FORMAT_H_
#define E4FS_TOOLS_E4_TEXT_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ext4/filesystem.h"

namespace e4cli {

// "drwxr-sr-x" (st_mode type and permission bits, as ls -l shows them).
std::string ModeString(uint32_t mode);
// "0755": the permission bits in octal.
std::string OctalMode(uint32_t mode);
// "regular file", "directory", "symbolic link", "fifo", "socket",
// "character device", "block device", or "unknown type 0170000".
std::string TypeName(uint32_t mode);
// The same as one short word for JSON: "file", "dir", "symlink", "fifo",
// "socket", "chardev", "blockdev", "unknown".
const char* TypeKey(uint32_t mode);

// "2001-09-09 01:46:40.000000000 +0000" in the local time zone (TZ).
std::string FormatTime(const ext4::Timestamp& time);
// "2001-09-09 01:46" in the local time zone, as ls -l shows it.
std::string ShortTime(const ext4::Timestamp& time);
// "2001-09-09 01:46:40 +0000" in the local time zone; "n/a" for 0.
std::string DateTime(int64_t seconds);
// "1000000000.000000000" (seconds since the epoch, may be negative).
std::string EpochTime(const ext4::Timestamp& time);

// "12.3 MiB".
std::string HumanBytes(uint64_t bytes);

// `bytes` in double quotes, with '"', '\\' and bytes outside printable ASCII
// and UTF-8 escaped as \ooo (as getfattr does).
std::string Quote(std::string_view bytes);
// Whether every byte is printable ASCII or part of valid UTF-8 text (no
// control characters).
bool IsPrintableText(std::string_view bytes);

std::string Hex(std::string_view bytes);
std::string Base64(std::string_view bytes);
// The inverses; nullopt for malformed input.
std::optional<std::string> Unhex(std::string_view text);
std::optional<std::string> Unbase64(std::string_view text);
// A value as setfattr(1) takes it: 0x... hex, 0s... base64, "..." with
// \ooo, \\ and \" escapes, or the text as it is.
std::optional<std::string> DecodeValue(std::string_view text);

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_TEXT_FORMAT_H_
