# Runs the shared vector tests (host_tests/vectors) under the built MicroPython, from source and
# from the .mpy bundle, within the ESP32's heap: the MicroPython run shows in the report as its own
# test per module and mode.
import re

import pytest

import upy_harness as upy

VECTORS = upy.REPO / "host_tests" / "vectors"
MODULES = sorted(p.stem for p in VECTORS.glob("test_vec_*.py"))
MODES = {
    "source": (upy.REPO, "shared/mac.py"),
    # the box's bundle holds every shared module a board imports (the client's is a subset)
    "mpy": ((upy.BUNDLES["configurator"], upy.BUNDLES["client"]),
            "build/configurator/shared/mac.mpy"),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("module", MODULES)
def test_vectors_under_micropython(module, mode, tmp_path):
    roots, loaded_from = MODES[mode]
    if mode == "mpy":
        src = (VECTORS / (module + ".py")).read_text()
        unbundled = [m for m in re.findall(r"from shared\.(\w+) import", src)
                     if not (upy.BUNDLES["configurator"] / "shared" / (m + ".mpy")).exists()]
        if unbundled:
            pytest.skip("shared/%s.py is in no board's bundle yet (nothing on a board imports "
                        "it): its vectors run from source only" % ", ".join(unbundled))
    roots = roots if isinstance(roots, tuple) else (roots,)
    upy.World(tmp_path)  # the interpreter's `time` is the emulated board's: it needs a clock
    r = upy.run([str(upy.UPY / "run.py"), module], [VECTORS, upy.UPY, *roots],
                cwd=VECTORS, heap=upy.ESP32_HEAP + upy.emu_overhead(),
                env={"EMU_DIR": str(tmp_path), "EMU_DEVICE": "vectors", "TZ": "UTC"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert loaded_from in out, "shared was not loaded from " + loaded_from + "\n" + out
    m = re.search(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", r.stdout, re.M)
    assert m, out
    passed, failed, skipped = map(int, m.groups())
    # the same test methods CPython collects from the file
    expected = len(re.findall(r"^    def test_", (VECTORS / (module + ".py")).read_text(), re.M))
    assert (passed, failed, skipped) == (expected, 0, 0), out
