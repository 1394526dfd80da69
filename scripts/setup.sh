#!/usr/bin/env bash
# Installs everything typevisor needs on a fresh Debian machine: Debian packages (the aarch64 cross
# toolchain and qemu-aarch64 used by the differential tests, qemu-system-aarch64 for benchmarks, dtc,
# e2fsprogs and cpio for images and tests, gdb-multiarch for the gdb stub's test; passt, dnsmasq and
# iproute2 for guest networking) and the npm packages; then builds the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=0
for tool in qemu-aarch64 qemu-system-aarch64 aarch64-linux-gnu-gcc dtc mkfs.ext4 cpio as gdb-multiarch passt dnsmasq ip; do
  command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
if ! dpkg --print-foreign-architectures | grep -qx arm64; then need_apt=1; fi
if [ "$need_apt" = 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages (apt-get)..." >&2
  # arm64 is added so that apt can fetch the arm64 guest kernel and busybox packages.
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    qemu-user qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils \
    device-tree-compiler e2fsprogs cpio gdb-multiarch passt dnsmasq-base iproute2 >/dev/null
fi

echo "setup: installing npm packages..." >&2
npm ci --no-audit --no-fund --loglevel=error
echo "setup: building..." >&2
npm run build --silent
echo "setup: done" >&2
