# Test harness: runs code under the built MicroPython unix port (the ESP32-like variant).
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MICROPYTHON = REPO / "build" / "micropython" / "bin" / "micropython"
BUNDLES = {"configurator": REPO / "build" / "configurator", "client": REPO / "build" / "client"}
UPY = REPO / "host_tests" / "upy"
EMU = REPO / "host_tests" / "emu"
ESP32_HEAP = "110wK"  # ~110 KB of heap on the ESP32; "w" scales by word size on a 64-bit host


def require_built():
    missing = [str(p) for p in (MICROPYTHON, *BUNDLES.values()) if not p.exists()]
    if missing:
        raise RuntimeError("not built: %s (`make test` builds them)" % ", ".join(missing))


def run(args, path, cwd=None, env=None, heap=None, timeout=120):
    """Run micropython with MICROPYPATH=path (a list); returns the CompletedProcess."""
    require_built()
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join(str(p) for p in path) + ":.frozen"
    e.update(env or {})
    cmd = [str(MICROPYTHON)] + (["-X", "heapsize=" + heap] if heap else []) + list(args)
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


def device_run(script, emu_dir, device, root=None, heap=None, timeout=60, cwd=None):
    """Run ``script`` (source text) under MicroPython as emulated device ``device``.

    The emulations and ``root`` (default: the repository's sources) are on the path; the
    device's filesystem root is its own directory under ``emu_dir``.
    """
    fs = Path(emu_dir) / "fs" / device
    fs.mkdir(parents=True, exist_ok=True)
    return run(["-c", script], [EMU, root or REPO], cwd=cwd or fs, heap=heap, timeout=timeout,
               env={"EMU_DIR": str(emu_dir), "EMU_DEVICE": device})
