# `make bench`: the board-true figures (the box at fleet size: bench_fleet.py; the hostile
# network: bench_attack.py; the client: bench_client.py), each
# measured in this run on the 32-bit interpreter with the board emulation, printed as a table
# with its target and verdict and written to build/bench.json. A target that is not met is
# printed as not met, with its figure.
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).parent.parent
sys.path[:0] = [str(Path(__file__).parent), str(_ROOT / "tools" / "hostlib"), str(_ROOT)]

import upy_harness as upy  # noqa: E402
from fleet import Fleet  # noqa: E402
from hostbox import HostDevice  # noqa: E402
from shared import protocol  # noqa: E402

KB = 1024
PEM_LINE = "A" * 64 + "\n"


def pem(kind, size):
    """A PEM text whose JSON encoding takes about ``size`` bytes (a line is 66 in JSON)."""
    lines = max(1, (size - 70) // (len(PEM_LINE) + 1))
    return "-----BEGIN %s-----\n%s-----END %s-----\n" % (kind, PEM_LINE * lines, kind)


def config_of(size):
    """A realistic config of about ``size`` bytes of JSON: WiFi, MQTT with a CA bundle."""
    base = {"wifi": [{"ssid": "plant-floor", "password": "s3cret-wifi"}],
            "mqtt": {"host": "mqtt.example.net", "port": 8883, "tls": True, "user": "fleet",
                     "password": "mqtt-pass"}, "ntp": "pool.ntp.org"}
    base["mqtt"]["ca"] = pem("CERTIFICATE", size - len(json.dumps(base)) - 120)
    assert size - 200 < len(json.dumps(base)) <= size - 40, len(json.dumps(base))
    return base


def cpu_seconds(pid):
    """CPU time a process has used: scheduler nanoseconds where the kernel gives them."""
    try:
        return int(Path("/proc/%d/schedstat" % pid).read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


# -- client
CHECK = """
import gc
gc.collect()
from client_fw.device import Device
from shared.board import Board
d = Device(Board(), sleep_ms=lambda ms: None)
print('STATUS', d.check(force=True))
"""


def client_bundle():
    """(bytes of the client .mpy bundle, modules in it the client never imports)."""
    root = upy.BUNDLES["client"]
    size = sum(p.stat().st_size for p in root.rglob("*.mpy"))
    d = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    f = Fleet(d)
    f.enroll("c1")
    f.start_box()
    try:
        out = f.devrun("c1", CHECK + "from client_fw.appconfig import Config\n"
                       "Config(Board()).get('mqtt')\nimport sys\n"
                       "print('MODS', ' '.join(sorted(sys.modules)))")
    finally:
        f.stop_box()
    loaded = set(out.split("MODS ")[1].split())
    bundled = {".".join(p.relative_to(root).with_suffix("").parts).replace(".__init__", "")
               for p in root.rglob("*.mpy")}
    return size, sorted(bundled - loaded)


class HttpDevice(HostDevice):
    """The CPython protocol client of hostbox, over HTTP to a running box."""

    def __init__(self, port, boot, box, src=None):
        """``src``: the station address it sends from (the box takes 2 connections at once
        from one station: devices at once each need their own)."""
        self.port, self.dev, self.dk, self.totp, self.box = port, boot["dev"], bytes.fromhex(
            boot["dk"]), bytes.fromhex(boot["totp"]), box
        self.k = protocol.long_term_key(self.dk, self.totp)
        self.sent = {}
        self.conn = None
        self.src = (src, 0) if src else None

    def post(self, path, body, now):
        c = http.client.HTTPConnection("127.0.4.1", self.port, timeout=30,
                                       source_address=self.src)
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        binary = r.getheader("Content-Type") == "application/octet-stream"
        return r.status, data if binary else json.loads(data), dict(r.getheaders())


FILL = """
from configurator_fw.store import Store, StoreError
from configurator_fw.vault import Vault
from configurator_fw import admin
from shared.board import Board
import gc, os
b = Board()
admin.setup('cfgbox-fill', 'cfgbox', 'passphrase 1',
            passphrase='test-fleet pass phrase 9!', auto_unseal=True, board=b)
s = Store(b, Vault.auto(b))
n = 0
try:
    for i in range({n}):
        dev = 'sensor-%04d' % i
        s.enroll(dev)
        s.set_overrides(dev, {{'name': 'room %d' % i, 'mqtt': {{'host': 'm.example.net',
                               'user': dev, 'password': 'pw-%08d' % i}}}})
        n += 1
        gc.collect()
    err = ''
except (OSError, StoreError, MemoryError) as e:
    err = repr(e)
st = os.statvfs('/')
print('FILL', n, st[3], repr(err))
"""


def devices_on_flash(n=1000):
    d = Path(tempfile.mkdtemp(prefix="bench-fill-"))
    r = upy.device_run(FILL.format(n=n), d, "box", bundle="configurator", timeout=1800,
                       frozen=True)  # the box as it must run on a 110 KB ESP32
    for line in r.stdout.splitlines():
        if line.startswith("FILL"):
            _, count, free, err = line.split(" ", 3)
            return int(count), int(free), err
    raise RuntimeError("fill run failed: " + r.stdout[-2000:] + r.stderr[-2000:])


# -- the table
def row(name, figure, target, met, unit=""):
    """A measured figure; one given only for reading the others (target "(figure)", "(baseline)")
    has no verdict and does not count as met."""
    if target.startswith("("):
        met = None
    return {"name": name, "figure": figure, "unit": unit, "target": target,
            "met": None if met is None else bool(met)}


def main():
    rows = []
    t0 = time.time()

    import bench_client

    rows.extend(bench_client.rows(row))
    size, unused = client_bundle()
    rows.append(row("client .mpy bundle", round(size / KB, 2), "<= 16 KB", size <= 16 * KB,
                    "KB"))
    rows.append(row("client bundle modules never imported", len(unused), "0 (%s)" % " ".join(
        unused) if unused else "0", not unused))

    import bench_fleet

    rows.extend(bench_fleet.rows(row))

    count, free, err = devices_on_flash()
    rows.append(row("devices with overrides enrolled on the 2 MiB LittleFS", count, "1000",
                    count >= 1000, ""))
    rows.append(row("  4 KB blocks left free after them", free, "(figure)", True))
    err = err.strip("'\"")
    if err:
        rows.append(row("  what stopped the enrolment", err, "no error", False))

    import bench_attack

    rows.extend(bench_attack.rows(row))

    out = {"rows": rows, "seconds": round(time.time() - t0, 1),
           "interpreter": "MicroPython 1.25.0 unix port, 32-bit, ESP32-like variant"}
    Path(upy.REPO / "build").mkdir(exist_ok=True)
    (upy.REPO / "build" / "bench.json").write_text(json.dumps(out, indent=1))
    w = max(len(r["name"]) for r in rows)
    print("%-*s  %-24s %-26s %s" % (w, "measure", "figure", "target", "verdict"))
    for r in rows:
        fig = "%s %s" % (r["figure"], r["unit"]) if r["unit"] else str(r["figure"])
        verdict = "-" if r["met"] is None else "met" if r["met"] else "NOT MET"
        print("%-*s  %-24s %-26s %s" % (w, r["name"], fig, r["target"], verdict))
    judged = [r for r in rows if r["met"] is not None]
    met = sum(r["met"] for r in judged)
    print("%d of %d targets met; %.0f s; written to build/bench.json"
          % (met, len(judged), out["seconds"]))


if __name__ == "__main__":
    main()
