// The server's life: open the image and the engine, create the FUSE session,
// mount, leave the terminal (unless -f), serve requests until the unmount,
// and clean up.
#ifndef E4FS_FUSE_SERVER_H_
#define E4FS_FUSE_SERVER_H_

#include "fuse/options.h"

namespace e4fs {

// The whole program: parses argv (see options.h), prints help or the version,
// or mounts and serves. Returns the process exit status: 0, kExitUsage for a
// bad command line, kExitMountFailed when the image cannot be mounted, 1
// when the session ends in error.
int RunServer(int argc, char** argv);

// Mounts and serves with already parsed options (action kMount).
int Serve(ServerOptions options);

}  // namespace e4fs

#endif  // E4FS_FUSE_SERVER_H_
