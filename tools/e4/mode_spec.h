// chmod's MODE argument: octal ("755", "4755") or symbolic clauses as
// chmod(1) takes them ("u+x", "go-w", "a=rX,u+s", "g=u").
#ifndef E4FS_TOOLS_E4_MODE_SPEC_H_
#define E4FS_TOOLS_E4_MODE_SPEC_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace e4cli {

// The permission bits (07777) that `spec` makes of `mode` (an st_mode:
// its type decides what X means). nullopt when `spec` is not a valid MODE.
// Without a u/g/o/a letter a clause applies to all (no umask: an image has
// none).
std::optional<uint32_t> ApplyModeSpec(std::string_view spec, uint32_t mode);

}  // namespace e4cli

#endif  // E4FS_TOOLS_E4_MODE_SPEC_H_
