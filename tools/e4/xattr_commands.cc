// e4 setfattr and e4 getfattr: extended attributes inside an image, with
// the value encodings of setfattr(1) and getfattr(1).
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ext4/errno_status.h"
#include "tools/e4/cli.h"
#include "tools/e4/commands.h"
#include "tools/e4/image_path.h"
#include "tools/e4/json.h"
#include "tools/e4/text_format.h"

namespace e4cli {
namespace {

constexpr char kSetfattrUsage[] =
    "Usage: e4 setfattr -n NAME [-v VALUE] IMAGE:/path...\n"
    "       e4 setfattr -x NAME IMAGE:/path...\n"
    "Sets or removes an extended attribute inside an image. NAME is a full\n"
    "name (user.*, trusted.*, security.*, system.posix_acl_access,\n"
    "system.posix_acl_default). VALUE is read as setfattr(1) reads it: 0x...\n"
    "is hex, 0s... is base64, \"...\" is text with \\ooo escapes, anything\n"
    "else is taken as it is; without -v the value is empty. A final symlink\n"
    "is followed unless -h.\n"
    "\n"
    "  -n, --name NAME         the attribute to set\n"
    "  -v, --value VALUE       its value\n"
    "  -x, --remove NAME       the attribute to remove\n"
    "      --create            fail if it exists already\n"
    "      --replace           fail if it does not exist\n"
    "  -h, --no-dereference    act on a final symlink itself\n"
    "      --help              this help\n";

constexpr char kGetfattrUsage[] =
    "Usage: e4 getfattr [OPTIONS] IMAGE:/path...\n"
    "Shows the extended attributes of files inside an image, as getfattr -d\n"
    "does: a '# file:' line, then NAME=VALUE lines, then an empty line.\n"
    "Values are text in double quotes when they are printable, base64\n"
    "(0s...) otherwise, unless -e says how. Every namespace is listed. A\n"
    "final symlink is followed unless -h.\n"
    "\n"
    "  -n, --name NAME           only this attribute (missing: an error)\n"
    "  -e, --encoding ENC        text, hex or base64\n"
    "      --only-values         the raw values only, nothing else\n"
    "      --json                JSON: {\"path\", \"xattrs\": [{\"name\",\n"
    "                            \"size\", \"value\" or \"value_base64\"}]}\n"
    "                            (an array of them for several paths)\n"
    "  -h, --no-dereference      a final symlink itself\n"
    "      --help                this help\n";

std::string Encode(const std::string& value, const std::string& encoding) {
  if (encoding == "hex") return "0x" + Hex(value);
  if (encoding == "base64") return "0s" + Base64(value);
  if (encoding == "text") return Quote(value);
  return IsPrintableText(value) ? Quote(value) : "0s" + Base64(value);
}

}  // namespace

int RunSetfattr(int argc, char** argv) {
  Command cmd("setfattr", kSetfattrUsage);
  std::optional<std::string> name, value, remove;
  bool no_deref = false;
  int flags = 0;
  constexpr int kCreate = 0x100, kReplace = 0x101;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "n:v:x:h",
          {{"name", required_argument, nullptr, 'n'},
           {"value", required_argument, nullptr, 'v'},
           {"remove", required_argument, nullptr, 'x'},
           {"create", no_argument, nullptr, kCreate},
           {"replace", no_argument, nullptr, kReplace},
           {"no-dereference", no_argument, nullptr, 'h'}},
          [&](int c, const char* arg) -> std::optional<int> {
            switch (c) {
              case 'n':
                name = arg;
                break;
              case 'v':
                value = arg;
                break;
              case 'x':
                remove = arg;
                break;
              case 'h':
                no_deref = true;
                break;
              case kCreate:
                flags = ext4::kXattrCreate;
                break;
              case kReplace:
                flags = ext4::kXattrReplace;
                break;
            }
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (name.has_value() == remove.has_value()) {
    return cmd.UsageError("give either -n NAME or -x NAME");
  }
  if (remove && value) return cmd.UsageError("-v goes with -n, not -x");
  if ((name && name->empty()) || (remove && remove->empty())) {
    return cmd.UsageError("an empty attribute name");
  }
  std::string bytes;
  if (value) {
    auto decoded = DecodeValue(*value);
    if (!decoded) return cmd.UsageError("invalid value '" + *value + "'");
    bytes = *decoded;
  }
  if (operands.empty()) return cmd.UsageError("missing IMAGE:/path");
  std::vector<ImagePath> paths;
  for (const std::string& op : operands) {
    auto where = ParseImagePath(op);
    if (!where.ok())
      return cmd.UsageError(std::string(where.status().message()));
    paths.push_back(*where);
  }
  ImageSet images(/*writable=*/true);
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    ext4::Filesystem& fs = *(*image)->fs;
    auto ino = Resolve(fs, where.path, !no_deref);
    absl::Status status = !ino.ok() ? ino.status()
                          : remove  ? fs.RemoveXattr(*ino, *remove)
                                    : fs.SetXattr(*ino, *name, bytes, flags);
    if (!status.ok()) {
      rc = cmd.Fail(Display(where) + ": " + (remove ? *remove : *name) + ": " +
                    StatusText(status));
    }
  }
  std::string file;
  absl::Status closed = images.CloseAll(&file);
  if (!closed.ok()) {
    return cmd.Fail(
        file + ": could not finish writing the image: " + StatusText(closed));
  }
  return rc;
}

int RunGetfattr(int argc, char** argv) {
  Command cmd("getfattr", kGetfattrUsage);
  std::optional<std::string> only;
  std::string encoding;
  bool only_values = false, json_out = false, no_deref = false;
  constexpr int kOnlyValues = 0x100, kJson = 0x101;
  std::vector<std::string> operands;
  if (auto stop = cmd.ParseOptions(
          argc, argv, "n:e:dh",
          {{"name", required_argument, nullptr, 'n'},
           {"encoding", required_argument, nullptr, 'e'},
           {"dump", no_argument, nullptr, 'd'},
           {"only-values", no_argument, nullptr, kOnlyValues},
           {"json", no_argument, nullptr, kJson},
           {"no-dereference", no_argument, nullptr, 'h'}},
          [&](int c, const char* arg) -> std::optional<int> {
            switch (c) {
              case 'n':
                only = arg;
                break;
              case 'e':
                encoding = arg;
                if (encoding != "text" && encoding != "hex" &&
                    encoding != "base64") {
                  return cmd.UsageError("unknown encoding '" + encoding +
                                        "' (text, hex or base64)");
                }
                break;
              case 'h':
                no_deref = true;
                break;
              case kOnlyValues:
                only_values = true;
                break;
              case kJson:
                json_out = true;
                break;
            }
            return std::nullopt;
          },
          &operands)) {
    return *stop;
  }
  if (operands.empty()) return cmd.UsageError("missing IMAGE:/path");
  if (only_values && json_out) {
    return cmd.UsageError("--only-values and --json do not mix");
  }
  std::vector<ImagePath> paths;
  for (const std::string& op : operands) {
    auto where = ParseImagePath(op);
    if (!where.ok())
      return cmd.UsageError(std::string(where.status().message()));
    paths.push_back(*where);
  }
  ImageSet images(/*writable=*/false);
  JsonWriter json;
  if (json_out && paths.size() > 1) json.BeginArray();
  std::string out;
  int rc = kExitOk;
  for (const ImagePath& where : paths) {
    auto image = images.Get(where.image);
    if (!image.ok()) {
      rc = cmd.Fail(where.image + ": " + StatusText(image.status()));
      continue;
    }
    ext4::Filesystem& fs = *(*image)->fs;
    auto ino = Resolve(fs, where.path, !no_deref);
    if (!ino.ok()) {
      rc = cmd.Fail(Display(where) + ": " + StatusText(ino.status()));
      continue;
    }
    std::vector<std::string> names;
    if (only) {
      names.push_back(*only);
    } else {
      auto listed = fs.ListXattrs(*ino);
      if (!listed.ok()) {
        rc = cmd.Fail(Display(where) + ": " + StatusText(listed.status()));
        continue;
      }
      names = std::move(*listed);
    }
    std::vector<std::pair<std::string, std::string>> values;
    for (const std::string& n : names) {
      auto v = fs.GetXattr(*ino, n);
      if (!v.ok()) {
        rc =
            cmd.Fail(Display(where) + ": " + n + ": " + StatusText(v.status()));
        continue;
      }
      values.emplace_back(n, std::move(*v));
    }
    if (json_out) {
      json.BeginObject();
      json.Field("path", where.path);
      json.Key("xattrs");
      json.BeginArray();
      for (const auto& [n, v] : values) {
        json.BeginObject();
        json.Field("name", n);
        json.Field("size", v.size());
        if (IsPrintableText(v)) {
          json.Field("value", v);
        } else {
          json.Field("value_base64", Base64(v));
        }
        json.EndObject();
      }
      json.EndArray();
      json.EndObject();
    } else if (only_values) {
      for (const auto& [n, v] : values) out += v;
    } else if (!values.empty()) {
      absl::StrAppend(&out, "# file: ", Display(where), "\n");
      for (const auto& [n, v] : values) {
        absl::StrAppend(&out, n, "=", Encode(v, encoding), "\n");
      }
      out += "\n";
    }
  }
  if (json_out) {
    if (paths.size() > 1) json.EndArray();
    out = json.Finish();
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() ||
      std::fflush(stdout) != 0) {
    return cmd.Fail("writing to stdout failed");
  }
  return rc;
}

}  // namespace e4cli
