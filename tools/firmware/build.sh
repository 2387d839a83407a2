#!/bin/bash
# make firmware: MicroPython v1.25.0 for a generic ESP32 with the cfgbox code frozen in and the
# sdkconfig of tools/firmware/CFGBOX_ESP32 (DHCP pool, sockets). Needs ESP-IDF v5.2.2: a local
# install (IDF_PATH, after `. $IDF_PATH/export.sh`) or Espressif's container (docker). DRY_RUN=1
# prints the commands only. Writes build/firmware/firmware.bin, for FIRMWARE= of make flash-box.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
MP_VERSION=v1.25.0
IDF_VERSION=v5.2.2
src="$repo/build/firmware/micropython"
out="$repo/build/firmware"
board="$repo/tools/firmware/CFGBOX_ESP32"
cmds=(
  "git clone --depth 1 -b $MP_VERSION https://github.com/micropython/micropython.git $src"
  "make -C $src/mpy-cross"
  "make -C $src/ports/esp32 submodules BOARD_DIR=$board"
  "make -C $src/ports/esp32 BOARD_DIR=$board CFGBOX_REPO=$repo"
  "cp $src/ports/esp32/build-CFGBOX_ESP32/firmware.bin $out/firmware.bin"
)
if [ -n "${DRY_RUN:-}" ]; then
  echo "# in an ESP-IDF $IDF_VERSION shell (. \$IDF_PATH/export.sh), or prefix each with:"
  echo "#   docker run --rm -v $repo:$repo -w $repo espressif/idf:$IDF_VERSION"
  printf '%s\n' "${cmds[@]}"
  exit 0
fi
if ! command -v idf.py >/dev/null; then
  echo "make firmware: no ESP-IDF here (idf.py is not on PATH). Install ESP-IDF $IDF_VERSION and" >&2
  echo "run '. \$IDF_PATH/export.sh' first, or run DRY_RUN=1 make firmware for the commands." >&2
  exit 2
fi
mkdir -p "$out"
[ -d "$src" ] || eval "${cmds[0]}"
for c in "${cmds[@]:1}"; do echo "+ $c"; eval "$c"; done
echo "firmware: $out/firmware.bin (write it with: make flash-box PORT=... FIRMWARE=$out/firmware.bin)"
