// What every e4 subcommand shares: its name in messages, the exit codes of
// commands.h, option parsing with --help, and errno-aware error text.
#ifndef E4FS_TOOLS_E4_CLI_H_
#define E4FS_TOOLS_E4_CLI_H_

#include <getopt.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace e4cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitFailure = 2;

// One subcommand's identity: "e4 NAME: " prefixes its messages.
class Command {
 public:
  // `usage` is the whole --help text, printed as is.
  Command(const char* name, const char* usage) : name_(name), usage_(usage) {}

  const char* name() const { return name_; }

  // Prints the --help text on stdout; returns 0.
  int Help() const;
  // "e4 NAME: MESSAGE" and a hint to --help on stderr; returns 1.
  int UsageError(std::string_view message) const;
  // "e4 NAME: MESSAGE" on stderr; returns 2.
  int Fail(std::string_view message) const;
  // "e4 NAME: MESSAGE" on stderr (the command goes on).
  void Warn(std::string_view message) const;

  // Parses argv with getopt_long (options may follow operands; "--" ends
  // them). `--help` is added to `long_options` here, and -h as well
  // unless `short_options` holds it. For every option,
  // `on_option(code, optarg)` runs and may return an exit code to stop with.
  // Returns the exit code to stop with (0 after --help, 1 on a bad option),
  // or nullopt with the operands in `operands`.
  std::optional<int> ParseOptions(
      int argc, char** argv, const char* short_options,
      std::vector<option> long_options,
      const std::function<std::optional<int>(int code, const char* arg)>&
          on_option,
      std::vector<std::string>* operands) const;

 private:
  const char* name_;
  const char* usage_;
};

// The option code ParseOptions gives --help (callers never see it).
inline constexpr int kHelpOption = 0x1000;

// A status as a user reads it: the errno's text, plus the engine's detail
// where it says more than the errno does.
std::string StatusText(const absl::Status& status);

// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so
// that a command changing an image can stop between two operations and
// still leave the image clean.
void CatchInterrupts();
bool Interrupted();

// Parses a decimal unsigned number that fits `max`.
std::optional<uint64_t> ParseUnsigned(std::string_view text,
                                      uint64_t max = UINT64_MAX);

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_CLI_H_
