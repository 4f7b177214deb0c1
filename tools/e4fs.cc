// e4fs: mounts an ext2/ext3/ext4 image through FUSE.
//
//   e4fs IMAGE MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s]
//
// Everything lives in fuse/; see `e4fs --help`.
#include "fuse/server.h"

int main(int argc, char** argv) { return e4fs::RunServer(argc, argv); }
