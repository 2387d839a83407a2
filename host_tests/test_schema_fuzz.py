# schemathesis, every check, over the device and admin APIs of the box as it runs (sealed, and
# logged in), with docs/openapi.yaml as the contract: no failure of any check (server errors
# other than the documented 503s, undocumented statuses, schema violations either way), no
# traceback and no MemoryError on the box's console, and a device enrolled after provisions.
# A bounded count here; `make hardening` runs the full one (schemafuzz.py) and prints where the
# box ran out of memory, if it did.
import pytest
import upy_harness as upy
from schemafuzz import fuzz

pytestmark = pytest.mark.skipif(not upy.MICROPYTHON.exists(),
                                reason="MicroPython not built: run `make test`")


@pytest.mark.parametrize("logged_in", [False, True], ids=["sealed", "logged-in"])
def test_schemathesis_finds_nothing_and_the_box_stays_whole(tmp_path, logged_in):
    # a fixed seed: the same cases on every machine (make hardening draws new ones each run)
    fig = fuzz(tmp_path, logged_in, examples=25, seed=20261202)
    assert fig["cases"] > 300, fig["output"]  # it ran: every operation, many cases
    assert fig["rc"] == 0 and fig["failures"] == 0, fig["output"]
    assert fig["tracebacks"] == 0 and fig["memory_errors"] == 0, fig["log"]
    assert fig["out_of_memory"] == 0, fig["oom_where"]  # answered 503, but out of memory all
    # the same
    if logged_in:
        assert fig["provisioned"] == "ok", fig["log"]
