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
        "boot.py", "main.py", "app.py"}, "only boot.py/main.py/app.py may stay source"
    assert not [p for p in root.rglob("*.py") if p.parent != root]
    # lib/ is on the board's sys.path: what lies there imports by the name below it
    names = [".".join(p.with_suffix("").parts[p.parts[0] == "lib":]).replace(".__init__", "")
             for p in mpys]
    script = "import sys\nfor n in %r:\n    m = __import__(n)\n    print('imported', n)\n" % (
        names,)
    script += "import shared.mac\nprint('from', shared.mac.__file__)\n"
    # a board with the bundle on its flash: sys.path is the port's ('', '.frozen', '/lib'). The
    # box's bytecode with its admin page no longer fits a generic ESP32's 110 KB as .mpy in the
    # heap: it runs frozen there (every test_e2e/test_sealed box does, at 110 KB); its .mpy
    # bundle is for boards with PSRAM, tried here at twice the heap.
    heap = 2 * upy.ESP32_HEAP if bundle == "configurator" else upy.ESP32_HEAP
    # the reference application's bundle goes onto a client's flash, over the client's
    r = upy.device_run(script, tmp_path, "board", bundle="client+app" if bundle == "app"
                       else bundle, heap=heap)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("imported ") == len(names)
    assert "from shared/mac.mpy" in r.stdout, r.stdout
    if bundle == "configurator":
        assert "imported microdot.microdot" in r.stdout


def test_the_admin_page_module_is_built_from_its_sources():
    """configurator_fw/page.py is generated (tools/mkpage.py) from page_src/: never stale."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "tools/mkpage.py", "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_the_client_manifest_and_package_json_list_exactly_the_client_bundle():
    """What the frozen firmware and `mip install` put on a board is what `make build` bundles:
    a module missing from one of them would fail only on a board built that way."""
    import ast
    import json

    root = upy.BUNDLES["client"]
    bundled = {p.relative_to(root).with_suffix(".py").as_posix() for p in root.rglob("*.mpy")}
    frozen = set()
    for call in ast.walk(ast.parse((upy.REPO / "client_fw" / "manifest.py").read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "package":
            pkg = call.args[0].value
            files = next(k.value for k in call.keywords if k.arg == "files")
            frozen |= {"%s/%s" % (pkg, ast.literal_eval(f)) for f in files.elts}
    assert frozen == bundled
    urls = json.loads((upy.REPO / "client_fw" / "package.json").read_text())["urls"]
    assert {dest for dest, _ in urls} == bundled | {"main.py"}
