#include "tools/e4/cli.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ext4/errno_status.h"

namespace e4cli {

int Command::Help() const {
  std::fputs(usage_, stdout);
  return kExitOk;
}

int Command::UsageError(std::string_view message) const {
  std::fprintf(stderr,
               "e4 %s: %.*s\nTry 'e4 %s --help' for more information.\n", name_,
               static_cast<int>(message.size()), message.data(), name_);
  return kExitUsage;
}

int Command::Fail(std::string_view message) const {
  Warn(message);
  return kExitFailure;
}

void Command::Warn(std::string_view message) const {
  std::fprintf(stderr, "e4 %s: %.*s\n", name_, static_cast<int>(message.size()),
               message.data());
}

std::optional<int> Command::ParseOptions(
    int argc, char** argv, const char* short_options,
    std::vector<option> long_options,
    const std::function<std::optional<int>(int, const char*)>& on_option,
    std::vector<std::string>* operands) const {
  long_options.push_back({"help", no_argument, nullptr, kHelpOption});
  long_options.push_back({nullptr, 0, nullptr, 0});
  // A leading ':' makes getopt report a missing argument as ':' and stay
  // quiet: the messages below name the subcommand.
  std::string shorts = std::string(":") + short_options;
  // -h is help too, unless the command gives it a meaning of its own.
  const bool short_help = shorts.find('h') == std::string::npos;
  if (short_help) shorts += 'h';
  optind = 0;  // a full reset, as glibc defines it
  opterr = 0;
  while (true) {
    int index = -1;
    int c =
        getopt_long(argc, argv, shorts.c_str(), long_options.data(), &index);
    if (c == -1) break;
    if (c == kHelpOption || (short_help && c == 'h')) return Help();
    const char* bad = argv[optind - 1];
    if (c == '?') {
      if (optopt != 0 && optopt < 0x100) {
        return UsageError(std::string("unknown option -") +
                          static_cast<char>(optopt));
      }
      return UsageError(std::string("unknown option ") + bad);
    }
    if (c == ':') {
      if (optopt != 0 && optopt < 0x100) {
        return UsageError(std::string("option -") + static_cast<char>(optopt) +
                          " needs an argument");
      }
      return UsageError(std::string("option ") + bad + " needs an argument");
    }
    if (std::optional<int> stop = on_option(c, optarg)) return stop;
  }
  operands->clear();
  for (int i = optind; i < argc; ++i) operands->emplace_back(argv[i]);
  return std::nullopt;
}

std::string StatusText(const absl::Status& status) {
  const int err = ext4::ErrnoOf(status);
  const std::string errno_text = std::strerror(err);
  const std::string message(status.message());
  if (message.empty() || message == errno_text) return errno_text;
  if (message.find(errno_text) != std::string::npos) return message;
  switch (err) {
    // The engine restates these in words; the errno's text says it all.
    case ENOENT:
    case EEXIST:
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case ENODATA:
    case ENAMETOOLONG:
      return errno_text;
    default:
      return errno_text + " (" + message + ")";
  }
}

namespace {
volatile sig_atomic_t interrupted = 0;
void OnSignal(int) { interrupted = 1; }
}  // namespace

void CatchInterrupts() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

bool Interrupted() { return interrupted != 0; }

std::optional<uint64_t> ParseUnsigned(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  if (value > max) return std::nullopt;
  return value;
}

}  // namespace e4cli
