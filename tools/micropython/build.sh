#!/usr/bin/env bash
# Builds the 32-bit MicroPython unix port (ESP32-like variant, emulation frozen in) from Debian's signed source packages.
# Usage: tools/micropython/build.sh OUTDIR        -> OUTDIR/bin/micropython
#        tools/micropython/build.sh OUTDIR --fw   -> OUTDIR/bin/micropython-fw, the same with the
#        box's and the client's firmware frozen in through their manifest.py (after `make build`)
set -euo pipefail

# Pinned versions. trixie is Debian stable: these stay on the mirror for its life.
MP_VER=${MP_VER:-1.25.0+ds-1}
MBEDTLS_VER=${MBEDTLS_VER:-3.6.6-0.1~deb13u1}
SUITE=${MP_SUITE:-trixie}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
emu="$repo/host_tests/emu"
out=$(mkdir -p "$1" && cd "$1" && pwd)
variant=esp32like
bin="$out/bin/micropython"
inputs=("$here"/variant/* "$emu"/*.py "$0")
if [ "${2:-}" = "--fw" ]; then
    variant=esp32like_fw
    bin="$out/bin/micropython-fw"
    inputs+=("$repo"/configurator_fw/*.py "$repo"/client_fw/*.py "$repo"/client_fw/apps/*.py
             "$repo"/shared/*.py "$repo"/build/vendor/microdot/*.py "$repo"/build/vendor/umqtt/*.py)
fi
stamp="$bin.stamp"
want="$MP_VER 32bit $(cat "${inputs[@]}" | sha256sum | cut -c1-16)"

if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "micropython $MP_VER already built: $bin (skipping)"
    exit 0
fi
if ! echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /dev/null 2>/dev/null; then
    echo "error: gcc cannot build 32-bit programs: install gcc-multilib (make setup does)" >&2
    exit 1
fi

# The sources are fetched and unpacked once; later builds only recompile what changed.
src_stamp="$out/src/.sources"
if [ ! -f "$src_stamp" ] || [ "$(head -n1 "$src_stamp")" != "$MP_VER $MBEDTLS_VER $SUITE" ]; then
    # The mirror is whatever this machine's apt already uses (never a hard-coded host).
    mirror=$(
        { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources || true;
          grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true; } |
        awk '{print $2}' | grep -v -e security -e '^$' | head -n1
    )
    [ -n "$mirror" ] || { echo "error: no Debian mirror found in /etc/apt sources" >&2; exit 1; }

    # A private apt state: /etc/apt and the system's package lists are not touched.
    apt_dir="$out/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$out/src"
    echo "deb-src $mirror $SUITE main" > "$apt_dir/sources.list"
    APT=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
         -o APT::Sandbox::User=root)
    echo "fetching source index of $SUITE from $mirror"
    apt-get "${APT[@]}" update >/dev/null

    # The pinned version, or (when it has left the mirror) the newest with a warning.
    pick() {  # pick PACKAGE PINNED VERSION-PREFIX
        local avail
        avail=$(apt-cache "${APT[@]}" showsrc "$1" | awk '/^Version:/{print $2}')
        if grep -qxF "$2" <<<"$avail"; then echo "$2"; return; fi
        local newest
        newest=$(grep "^$3" <<<"$avail" | sort -V | tail -n1)
        [ -n "$newest" ] || { echo "error: no $1 $3* source in $SUITE (pinned $2 is gone)" >&2; return 1; }
        echo "warning: $1 $2 is no longer on the mirror; using $newest" >&2
        echo "$newest"
    }
    mp=$(pick micropython "$MP_VER" 1.25.)
    mbed=$(pick mbedtls "$MBEDTLS_VER" 3.6.)

    cd "$out/src"
    rm -rf ./*
    apt-get "${APT[@]}" source --download-only "micropython=$mp" "mbedtls=$mbed" >/dev/null
    tar xf micropython_*.orig.tar.*
    tar xf mbedtls_*.orig.tar.*
    top=$(ls -d micropython-*/)
    top=${top%/}
    # The +ds tarball has lib/mbedtls, lib/micropython-lib and lib/berkeley-db-1.xx emptied.
    # MicroPython compiles mbedtls in with its own config (no system mbedtls, no Debian patches).
    rm -rf "$top/lib/mbedtls"
    mv "$(ls -d mbedtls-*/)" "$top/lib/mbedtls"
    touch "$top/lib/micropython-lib/README.md"   # mkrules refuses to freeze without it
    printf '%s\n%s\n' "$MP_VER $MBEDTLS_VER $SUITE" "$mp" > "$src_stamp"
fi
mp=$(sed -n 2p "$src_stamp")
cd "$out/src"
top=$(ls -d micropython-*/)
top=${top%/}

# The variant and the frozen emulation, copied afresh each build; the firmware variant freezes
# the bundles too, through the manifests a user would include in a board's firmware.
vdir="$top/ports/unix/variants/$variant"
rm -rf "$vdir"
cp -r "$here/variant" "$vdir"
mkdir -p "$vdir/emu"
cp "$emu"/*.py "$vdir/emu/"
if [ "$variant" = esp32like_fw ]; then
    printf 'include("%s")\ninclude("%s", shared=False)\ninclude("%s")\n' \
        "$repo/configurator_fw/manifest.py" "$repo/client_fw/manifest.py" \
        "$repo/client_fw/apps/manifest.py" >> "$vdir/manifest.py"
fi

# A change of the variant's configuration rebuilds from clean (make tracks sources, not every
# generated table); a change of frozen modules alone rebuilds incrementally.
unix="$top/ports/unix"
bdir="build-${variant}32"
cfg=$(cat "$here"/variant/*.h "$here"/variant/*.mk | sha256sum | cut -c1-16)
if [ "$(cat "$unix/$bdir/.config" 2>/dev/null)" != "$cfg" ]; then
    rm -rf "${unix:?}/$bdir"
fi

# makeversionhdr must not run `git describe` in our repository.
export MICROPY_GIT_TAG="v${mp%%+*}" MICROPY_GIT_HASH="debian-$mp"
jobs=$(nproc)
started=$(date +%s)
echo "building mpy-cross and the 32-bit unix port (variant $variant, $jobs jobs; a first build takes about a minute)"
make -s -C "$top/mpy-cross" -j"$jobs" >"$out/build-mpy-cross.log" 2>&1 ||
    { tail -n 30 "$out/build-mpy-cross.log"; exit 1; }
make -s -C "$top/ports/unix" VARIANT="$variant" BUILD="$bdir" -j"$jobs" \
    >"$out/build-$variant.log" 2>&1 || { tail -n 30 "$out/build-$variant.log"; exit 1; }
echo "$cfg" > "$unix/$bdir/.config"

mkdir -p "$out/bin"
cp "$unix/$bdir/micropython" "$bin.new" && mv "$bin.new" "$bin"  # a running one keeps its copy
echo "$want" > "$stamp"
"$bin" -c "import sys; print('built', sys.implementation)"
echo "built $variant in $(( $(date +%s) - started )) s"
