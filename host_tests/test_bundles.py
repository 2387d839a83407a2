# The two board bundles of `make build`: every module is a .mpy that an emulated board imports from
# its flash alone (the bundle copied there, nothing else on its path), within the ESP32's heap.
import pytest

import upy_harness as upy


@pytest.mark.parametrize("bundle", sorted(upy.BUNDLES))
def test_bundle_imports_under_micropython(bundle, tmp_path):
    root = upy.BUNDLES[bundle]
    mpys = sorted(p.relative_to(root) for p in root.rglob("*.mpy"))
    assert mpys, "empty bundle " + str(root)
    assert not list(root.rglob("*.py")) or {p.name for p in root.glob("*.py")} <= {
        "boot.py", "main.py"}, "only boot.py/main.py may stay source"
    assert not [p for p in root.rglob("*.py") if p.parent != root]
    names = [".".join(p.with_suffix("").parts).replace(".__init__", "") for p in mpys]
    script = "import sys\nfor n in %r:\n    m = __import__(n)\n    print('imported', n)\n" % (
        names,)
    script += "import shared.mac\nprint('from', shared.mac.__file__)\n"
    # a board with the bundle on its flash: sys.path is the port's ('', '.frozen', '/lib')
    r = upy.device_run(script, tmp_path, "board", bundle=bundle)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("imported ") == len(names)
    assert "from shared/mac.mpy" in r.stdout, r.stdout
    if bundle == "configurator":
        assert "imported microdot.microdot" in r.stdout
