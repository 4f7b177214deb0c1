#!/usr/bin/env bash
# Installs, from Debian's archive only, whatever the build, the tests and the
# benchmark need and this machine lacks. Safe to run again: it installs
# nothing when everything is present.
set -euo pipefail

packages=(
  bazel-bootstrap g++ clang libclang-rt-14-dev clang-format pkg-config
  libfuse3-dev fuse3 libseccomp-dev libabsl-dev libgtest-dev libisal-dev zlib1g-dev
  e2fsprogs fuse2fs attr python3 util-linux fio
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
