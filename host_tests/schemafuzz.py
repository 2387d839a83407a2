# schemathesis (pinned, every check) against the box as it runs: the firmware under the 32-bit
# MicroPython harness, served on the emulated AP, docs/openapi.yaml as the contract, the checks'
# statuses as host_tests/schemathesis.toml gives them. Sealed (no session: the device API
# answers 503, the admin API 401) or logged in (the device API served, every admin change made
# with the session's cookie and CSRF token). After the run, a device enrolled then must provision.
# Used by test_schema_fuzz.py (a bounded count) and `make hardening` (the full count).
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE.parent), str(HERE.parent / "tools" / "hostlib"), str(HERE)):
    if _p not in sys.path:  # run as `make hardening` does: the paths conftest.py gives pytest
        sys.path.insert(0, _p)

from adminhttp import AdminClient  # noqa: E402
from fleet import PASSPHRASE, sealed_fleet  # noqa: E402
SPEC = HERE.parent / "docs" / "openapi.yaml"
CONFIG = HERE / "schemathesis.toml"
ST = Path(sys.executable).parent / "st"
CFG = {"wifi": [{"ssid": "plant-floor", "password": "wifi secret 2431"}],
       "mqtt": {"host": "mqtt.local", "user": "fleet", "password": "mqtt secret 9913"}}
# Not fuzzed: lock and logout end the session the run is logged in with (they have tests of
# their own in test_sealed.py).
EXCLUDED = ("/admin/api/lock", "/admin/api/logout")


def fuzz(tmp_path, logged_in, examples, seed=None):
    """Run schemathesis once against a fresh box; returns a dict of figures: rc, cases,
    failures (schemathesis's own count), tracebacks, memory_errors and out_of_memory (the box's
    console), provisioned (the device's check after the run), the output's tail."""
    f = sealed_fleet(tmp_path, CFG)
    try:
        headers = []
        if logged_in:
            a = AdminClient(f.port)
            status, out, _ = a.login(PASSPHRASE, time=int(time.time()))
            assert status == 200, out
            headers = ["-H", "Cookie: " + a.cookie, "-H", "X-CSRF-Token: " + a.csrf]
        cmd = [str(ST), "--no-color", "--config-file", str(CONFIG), "run", str(SPEC),
               "--url", "http://127.0.4.1:%d" % f.port, "--checks", "all",
               "--max-examples", str(examples), "--workers", "1",
               "--request-timeout", "120"]  # a hang guard: answers take milliseconds
        for path in EXCLUDED:
            cmd += ["--exclude-path", path]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        r = subprocess.run(cmd + headers, capture_output=True, text=True, timeout=3600)
        out = r.stdout + r.stderr
        m = re.search(r"(\d+) generated", out)
        fails = re.search(r"(\d+) unique failures?", out)
        log = f.box_log_text()
        figures = {"rc": r.returncode, "cases": int(m.group(1)) if m else 0,
                   "failures": int(fails.group(1)) if fails else 0,
                   "tracebacks": log.count("Traceback"),
                   "memory_errors": log.count("MemoryError"),
                   "out_of_memory": log.count("out of memory"),
                   "oom_where": sorted(set(line for line in log.splitlines()
                                           if "out of memory" in line)),
                   "output": out[-6000:], "log": log[-30000:]}
        if logged_in:
            # the fuzzer learns ids from the answers and revokes or re-keys them as an operator
            # may (sensor-1 among them): the proof is a device enrolled now, on the same box
            # still running, that provisions
            status, out, _ = a.post("enroll", {"dev": "after-fuzz"})
            assert status == 200, out
            f.write_bootstrap("after-fuzz", out["bootstrap"])
            f.boots["after-fuzz"] = out["bootstrap"]
            figures["provisioned"] = f.check("after-fuzz", attempts=3)[0]
        return figures
    finally:
        f.stop_box()


def main():
    """`make hardening`: the full count, sealed and logged in, with its figures."""
    import tempfile
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    bad = 0
    for logged_in in (False, True):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.time()
            fig = fuzz(Path(d), logged_in, examples)
            name = "logged in" if logged_in else "sealed"
            print("schemathesis, %s: %d cases in %.0f s, %d failures of any check, "
                  "%d tracebacks, %d MemoryErrors, %d out-of-memory answers (503)%s"
                  % (name, fig["cases"], time.time() - t0, fig["failures"], fig["tracebacks"],
                     fig["memory_errors"], fig["out_of_memory"],
                     ", the device after it: %s" % fig["provisioned"] if logged_in else ""))
            if fig["out_of_memory"]:
                print("  out of memory (target 0): NOT MET, at:")
            for line in fig["oom_where"]:
                print("    " + line)
            if fig["rc"] or fig["tracebacks"] or fig["memory_errors"] or fig["out_of_memory"] \
                    or (logged_in and fig["provisioned"] != "ok"):
                bad += 1
                if fig["rc"]:
                    print(fig["output"])
    import bench
    import bench_attack
    for r in bench_attack.rows(bench.row):  # the hostile network's figures (make bench's too)
        print("%s: %s%s (target %s)%s" % (r["name"].strip(), r["figure"], r["unit"], r["target"],
                                         "" if r["met"] is None else
                                         " met" if r["met"] else " NOT MET"))
        bad += r["met"] is False
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
