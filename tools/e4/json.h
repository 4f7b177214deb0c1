// A small streaming JSON writer for the --json outputs: objects, arrays,
// strings, integers and booleans, indented two spaces per level.
//
//   JsonWriter j;
//   j.BeginObject();
//   j.Field("ino", 12);
//   j.Key("xattrs"); j.BeginArray(); ... j.EndArray();
//   j.EndObject();
//   std::fputs(j.Finish().c_str(), stdout);
//
// Strings are bytes: valid UTF-8 passes through (with the JSON escapes),
// any other byte becomes U+FFFD. Callers that must keep arbitrary bytes
// also emit a hex or base64 field.
#ifndef E4FS_TOOLS_E4_JSON_H_
#define E4FS_TOOLS_E4_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace e4cli {

class JsonWriter {
 public:
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // The next value's name (inside an object).
  void Key(std::string_view key);

  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Bool(bool value);
  void Null();

  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const char* value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const std::string& value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, bool value) {
    Key(key);
    Bool(value);
  }
  template <typename T>
  requires std::is_integral_v<T>
  void Field(std::string_view key, T value) {
    Key(key);
    if constexpr (std::is_signed_v<T>) {
      Int(value);
    } else {
      Uint(value);
    }
  }

  // The document, with a final newline.
  std::string Finish();

 private:
  // Commas and indentation before a value or key.
  void BeforeValue();
  void Newline();
  // Ends the innermost container with `bracket`.
  void Close(char bracket);
  void Escape(std::string_view text);

  std::string out_;
  // One entry per open container: whether it holds anything yet.
  std::vector<bool> has_items_;
  bool after_key_ = false;
};

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_JSON_H_
