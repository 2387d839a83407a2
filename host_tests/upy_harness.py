# Test harness: runs code under the built 32-bit MicroPython unix port (the ESP32-like variant with
# the board emulation frozen in), as an emulated board: its own flash (LittleFS image), NVS, clock.
import json
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from littlefs import LittleFS, LittleFSError, UserContext

REPO = Path(__file__).resolve().parent.parent
MICROPYTHON = REPO / "build" / "micropython" / "bin" / "micropython"
# the same interpreter with the bundles frozen in (their manifest.py): a board whose firmware
# image holds the code, so its bytecode takes no heap; its flash holds only main.py
MICROPYTHON_FW = REPO / "build" / "micropython" / "bin" / "micropython-fw"
BUNDLES = {"configurator": REPO / "build" / "configurator", "client": REPO / "build" / "client",
           "app": REPO / "build" / "app"}  # app: the reference application, over "client"
IMAGES = REPO / "build" / "images"
UPY = REPO / "host_tests" / "upy"
ESP32_HEAP = 110 * 1024  # bytes of heap on a generic ESP32 (32-bit words, as the interpreter)
# MICROPY_GC_INITIAL_HEAP_SIZE on the ESP32 (ports/esp32/mpconfigport.h, v1.25.0 to v1.28.0): the
# first heap area; the port adds more from the IDF heap (its largest free block) as needed
FIRST_AREA = 56 * 1024
# An ESP32 with PSRAM (WROVER class) on the stock ESP32_GENERIC-SPIRAM image: the same first area,
# then areas from the PSRAM (CONFIG_SPIRAM_USE_MALLOC: the IDF heap's largest free block is in
# it). 1 MB here, a quarter of a WROVER's 4 MB: a box that runs here runs there.
PSRAM_HEAP = 1024 * 1024
# A hang guard for one board run, never a verdict: the longest run (a box filling 250 devices)
# takes about 20 s on an idle 2-core machine, so 600 s leaves a loaded one 30 times that
HANG_S = 600
CLIENT_HEAP = 32 * 1024  # what a client may take, leaving the rest to the application's TLS
WORLD_START = 1795219200  # the emulated world's Unix time when a test starts: 2026-11-21 00:00 UTC
BLOCK, BLOCKS = 4096, 512  # the ESP32's 2 MiB "vfs" partition (host_tests/emu/emu_flash.py)
CUT_EXIT = 99  # a board whose power was cut by EMU_CUT_AT


def require_built():
    missing = [str(p) for p in (MICROPYTHON, MICROPYTHON_FW, *BUNDLES.values()) if not p.exists()]
    if missing:
        raise RuntimeError("not built: %s (`make test` builds them)" % ", ".join(missing))


def run(args, path, cwd=None, env=None, heap=None, timeout=120):
    """Run micropython with MICROPYPATH=path (a list); returns the CompletedProcess. For code that
    needs no board (the crypto vectors); heap in bytes."""
    require_built()
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join(str(p) for p in path) + ":.frozen"
    e.update(env or {})
    cmd = [str(MICROPYTHON)] + (["-X", "heapsize=%d" % heap] if heap else []) + list(args)
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


# -- the emulated world's clock (host_tests/emu/emu_clock.py reads the same file)
class World:
    """The clock every emulated board of one test shares; only the test (and boards that sleep)
    move it. Never the host's wall clock."""

    def __init__(self, emu_dir, start=WORLD_START):
        self.file = Path(emu_dir) / "clock"
        if not self.file.exists():
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._write(start, 0)

    def _read(self):
        origin, ms = self.file.read_bytes().split()
        return int(origin), int(ms)

    def _write(self, origin, ms):
        # in place, fixed width: the boards keep the file open
        mode = "r+b" if self.file.exists() else "wb"
        with open(self.file, mode) as f:
            f.write(b"%015d %015d\n" % (origin, ms))

    def now(self):
        """The world's Unix time in whole seconds."""
        origin, ms = self._read()
        return origin + ms // 1000

    def advance(self, seconds):
        origin, ms = self._read()
        ms += int(seconds * 1000)
        assert ms < 1 << 30, "the emulated world runs at most 12 days"
        self._write(origin, ms)


# -- the site's network: an AP no emulated board runs (the site's own), with its own addresses
class Site:
    """The site's WiFi as the emulated boards see it: an AP ``ssid`` with WPA2 ``key`` on network
    ``net`` (e.g. 127.0.8, standing for the site's 10.0.8.x; its .1 is the gateway), whose DNS
    answers ``dns`` (name -> address). Servers on its addresses (a broker on 127.0.8.1) are
    reachable only by boards joined to it (host_tests/emu/socket.py routes so)."""

    def __init__(self, emu_dir, ssid, key, net="127.0.8", dns=None, max_clients=250):
        self.file = Path(emu_dir) / "ap" / (ssid.encode().hex() + ".json")
        self.conf = {"ssid": ssid, "key": key, "authmode": 3, "max_clients": max_clients,
                     "channel": 6, "hidden": False, "net": net, "dns": dict(dns or {})}
        self.gateway = net + ".1"

    def up(self):
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.conf))
        tmp.replace(self.file)

    def down(self):
        self.file.unlink(missing_ok=True)


# -- flash images
def _fs(data):
    ctx = UserContext(len(data))
    ctx.buffer = data
    # MicroPython's VfsLfs2 defaults (extmod/vfs_lfsx.c): read/prog 32, lookahead 32, cache 128
    return LittleFS(context=ctx, block_size=BLOCK, block_count=BLOCKS, read_size=32,
                    prog_size=32, lookahead_size=32, cache_size=128, block_cycles=100,
                    mount=False)


def _bundle_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


@lru_cache(maxsize=None)
def golden_image(bundle):
    """A 2 MiB LittleFS image holding ``bundle`` ("client", "configurator", "app", or several
    joined by "+"), as `mpremote cp -r build/BUNDLE/. :` leaves a freshly flashed board; made
    once per test session. "NAMES:frozen" holds only the bundles' top-level files (main.py,
    app.py), for a board whose firmware has the rest frozen in."""
    require_built()
    data = bytearray(b"\xff" * BLOCK * BLOCKS)
    fs = _fs(data)
    fs.format()
    fs.mount()
    names, _, frozen = bundle.partition(":")
    for name in names.split("+"):
        root = BUNDLES[name]
        for p in _bundle_files(root):
            if frozen and p.parent != root:
                continue
            rel = p.relative_to(root).as_posix()
            if "/" in rel:
                fs.makedirs(rel.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(rel, "wb") as f:
                f.write(p.read_bytes())
    fs.unmount()
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / (bundle.replace(":", "-") + ".img")
    tmp = out.with_suffix(".%d.tmp" % os.getpid())
    tmp.write_bytes(ctx_bytes(fs))
    tmp.replace(out)  # whole or not at all, for a board copying it meanwhile
    return out


def ctx_bytes(fs):
    return bytes(fs.context.buffer)


def device_dir(emu_dir, device):
    return Path(emu_dir) / "dev" / device


def flash_image(emu_dir, device):
    return device_dir(emu_dir, device) / "flash.img"


def provision_board(emu_dir, device, bundle, frozen=False):
    """A new board with ``bundle`` on its flash (nothing else), or, ``frozen``, with the bundle
    in its firmware and only main.py on its flash: its first run is a power-on."""
    d = device_dir(emu_dir, device)
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(golden_image(bundle + (":frozen" if frozen else "")), d / "flash.img")
    (d / "firmware").write_text("frozen" if frozen else "plain")
    World(emu_dir)


def blank_board(emu_dir, device, frozen=False):
    """A board as it leaves the factory with MicroPython just written: its filesystem
    partition erased (the first boot makes the filesystem and boot.py, inisetup.py); a
    ``frozen`` board's firmware holds the bundles."""
    d = device_dir(emu_dir, device)
    d.mkdir(parents=True, exist_ok=True)
    (d / "flash.img").write_bytes(b"\xff" * BLOCK * BLOCKS)
    (d / "firmware").write_text("frozen" if frozen else "plain")
    World(emu_dir)


def is_frozen(emu_dir, device):
    f = device_dir(emu_dir, device) / "firmware"
    return f.exists() and f.read_text() == "frozen"


class DeviceFS:
    """A board's flash from the host, while the board is not running (like a flash dump)."""

    def __init__(self, emu_dir, device):
        self.path = flash_image(emu_dir, device)

    def _open(self):
        data = bytearray(self.path.read_bytes())
        fs = _fs(data)
        fs.mount()
        return fs

    def read(self, name):
        fs = self._open()
        with fs.open(name, "rb") as f:
            return f.read()

    def write(self, name, data):
        fs = self._open()
        with fs.open(name, "wb") as f:
            f.write(data)
        fs.unmount()
        self.path.write_bytes(ctx_bytes(fs))

    def put_tree(self, local_root):
        """Copy every folder and file under ``local_root`` to the flash's root (what
        `mpremote fs cp -r` does to a real board)."""
        fs = self._open()
        root = Path(local_root)
        for p in sorted(root.rglob("*")):
            name = str(p.relative_to(root))
            if p.is_dir():
                try:
                    fs.mkdir(name)
                except LittleFSError:
                    pass  # exists
            else:
                with fs.open(name, "wb") as f:
                    f.write(p.read_bytes())
        fs.unmount()
        self.path.write_bytes(ctx_bytes(fs))

    def get_tree(self, name, local_root):
        """Copy the folder ``name`` and all under it into ``local_root`` (what
        `mpremote fs cp -r :name local_root/` does from a real board)."""
        fs = self._open()

        def walk(path):
            (Path(local_root) / path).mkdir(parents=True, exist_ok=True)
            for entry in fs.listdir(path):
                sub = path + "/" + entry
                if fs.stat(sub).type == 2:  # LFS_TYPE_DIR
                    walk(sub)
                else:
                    with fs.open(sub, "rb") as f:
                        (Path(local_root) / sub).write_bytes(f.read())

        walk(name)

    def exists(self, name):
        try:
            self._open().stat(name)
            return True
        except (FileNotFoundError, LittleFSError):
            return False


# -- running code on an emulated board
_BOOT = "import emu_boot\nemu_boot.power_on()\n"


def board_cmd(script, heap, frozen=False):
    """A board's interpreter running ``script`` after its boot, with ``heap`` bytes of heap in
    areas as the port has them: a first area of at most FIRST_AREA (plus the emulation's own
    share), the rest added by the GC on demand, no area larger than FIRST_AREA (emuheap.c); a
    heap beyond ESP32_HEAP is a PSRAM board's, whose largest free block is the PSRAM's."""
    interpreter = MICROPYTHON_FW if frozen else MICROPYTHON
    first = min(heap, FIRST_AREA)
    block = FIRST_AREA if heap <= ESP32_HEAP else heap - first
    grow = "import emuheap\nemuheap.budget(%d, %d)\n" % (heap - first, block)
    return [str(interpreter), "-X", "heapsize=%d" % (first + emu_overhead()), "-c",
            grow + _BOOT + script]


def board_env(emu_dir, device, cold=False, extra=None):
    env = dict(os.environ, EMU_DIR=str(emu_dir), EMU_DEVICE=device, TZ="UTC",
               EMU_BOOT="power" if cold else "reset", MICROPYPATH=".frozen")
    if is_frozen(emu_dir, device):
        # a frozen board stands for the firmware tools/firmware builds: its sdkconfig raises
        # the softAP's DHCP pool to 10 (stock MicroPython: 8)
        env["EMU_DHCPS_LEASES"] = "10"
    env.update(extra or {})
    return env


def device_run(script, emu_dir, device, bundle="client", heap=ESP32_HEAP, timeout=HANG_S,
               cold=None, env=None, frozen=False):
    """Run ``script`` (source text) on emulated board ``device`` as `mpremote exec` would, after
    its boot: its flash at '/', the board's sys.path. A new board gets ``bundle`` flashed (or
    frozen into its firmware) and powers on; later runs are software resets (the clock keeps
    running) unless ``cold``. ``heap`` is the board's heap in bytes; the emulation's own share
    is added on top."""
    if not flash_image(emu_dir, device).exists():
        provision_board(emu_dir, device, bundle, frozen)
        cold = True if cold is None else cold
    return subprocess.run(board_cmd(script, heap, is_frozen(emu_dir, device)),
                          cwd=device_dir(emu_dir, device),
                          env=board_env(emu_dir, device, bool(cold), env), capture_output=True,
                          text=True, timeout=timeout)


@lru_cache(maxsize=None)
def emu_overhead():
    """Bytes of heap the frozen emulation itself takes (module globals, functions, classes and
    the block device object of network, machine, esp32, socket, time and emu_*), which on a board
    are C and cost the firmware nothing. Measured here once, at the start of a board's boot, and
    added to every board's heap so the firmware sees what it would see on the board. The LittleFS
    mount (VfsLfs2 and its caches) is not subtracted: a board pays for it too."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        World(d)
        dev = Path(d) / "dev" / "calib"
        dev.mkdir(parents=True)
        (dev / "flash.img").write_bytes(b"\xff" * BLOCK * BLOCKS)
        # a commissioned board's NVS (its bootstrap blob), whose index the emulation keeps
        from tools import nvsimage

        nvsimage.make({"dev": "sensor-0001", "dk": "ab" * 32, "totp": "cd" * 20,
                       "ssid": "cfgbox-fleet-ap", "psk": "x" * 24, "box": "cfgbox-calib"},
                      dev / "nvs.bin")
        script = ("import gc\ngc.collect()\nstart = gc.mem_free()\n"
                  "import emu_registry, emu_clock, emu_flash, emu_boot\n"
                  "import esp32, machine, network, socket, time\n"
                  "bdev = emu_flash.Flash(emu_registry.path('dev', 'calib', 'flash.img'))\n"
                  "emu_clock.power_on(True)\nesp32._part()\n"
                  "gc.collect()\nprint(start - gc.mem_free())\n")
        r = subprocess.run([str(MICROPYTHON), "-X", "heapsize=%d" % ESP32_HEAP, "-c", script],
                           env=board_env(d, "calib"), capture_output=True, text=True,
                           timeout=HANG_S)
        assert r.returncode == 0, r.stdout + r.stderr
        return int(r.stdout.split()[-1])


# Board-side code for scripts that run the box's device API and a client's exchange in one board,
# the HTTP hop replaced: the API's answer as the client's http.Response gives it.
WIRE = """
class Wire:
    def __init__(self, status, out, headers):
        self.status = status
        self.retry = int(headers['Retry-After']) if headers and 'Retry-After' in headers else None
        self.json_body = isinstance(out, dict)
        self._out = out
        self._chunk = b''
    def json(self):
        return json.loads(json.dumps(self._out))
    def readinto(self, buf):
        while not self._chunk:
            try:
                self._chunk = next(self._out)
            except StopIteration:
                return 0
        n = min(len(buf), len(self._chunk))
        buf[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n
    def close(self):
        pass

def wire(host, port, path, obj, src=None):
    return Wire(*api.handle(path, json.loads(json.dumps(obj)), src, clock[0]))

"""
