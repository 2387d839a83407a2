"""`make demo`: the operator's whole story on the board-true harness, no hardware needed.

A fleet is made with the CLI (tools/fleet.py), the box's store is copied to an emulated ESP32
(32-bit MicroPython at 110 KB, frozen firmware, LittleFS flash, softAP, lwIP's socket limit) as
`make flash-box` copies it to a real one, the box powers on sealed and is unlocked through the
admin API the way the admin page does it (passphrase and the browser's clock), then 10 emulated
client devices get their bootstrap secrets (as `make flash-client` writes them), join the AP
and provision at once. One fleet setting is changed and every device picks up the new version.
Exit status 0 only if every device provisioned both times. `--keep` leaves the box running.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host_tests"), str(ROOT / "tools" / "hostlib"), str(ROOT)]

import upy_harness as upy  # noqa: E402
from adminhttp import AdminClient  # noqa: E402
from fleet import free_port  # noqa: E402

from shared import passphrase  # noqa: E402

DEMO = ROOT / "build" / "demo"
DEVICES = ["sensor-%02d" % i for i in range(1, 11)]
DEFAULTS = {"wifi": [{"ssid": "plant-floor", "password": "floor-wifi-7731"}],
            "mqtt": {"host": "mqtt.plant.local", "port": 8883, "tls": True, "user": "fleet",
                     "password": "mqtt-pass-2209"},
            "api_keys": {"influx": "demo-influx-token"}, "ntp": "pool.ntp.org"}
PHASES = ("joining", "authenticating", "stored", "acknowledged")

DEVICE_SCRIPT = """
from client_fw import provision
from client_fw.device import Device
from shared.board import Board
provision.progress = lambda p: print("PHASE", p)
d = Device(Board(), sleep_ms=lambda ms: None)
print("STATUS", d.check(force=True, attempts=4))
"""


def cli(*args, env):
    r = subprocess.run([sys.executable, "-m", "tools.fleet", "--file",
                        str(DEMO / "fleet.cfgbox"), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("demo: fleet %s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


class Progress:
    def __init__(self):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.rows = {}

    def event(self, dev, what):
        with self.lock:
            t = time.monotonic() - self.t0
            row = self.rows.setdefault(dev, {})
            row.setdefault(what, t)
            print("  %6.2f s  %-10s %s" % (t, dev, what), flush=True)


def run_devices(progress):
    """Every device checks at once, as a fleet powered on together; their lines as they come."""
    procs = {}
    for dev in DEVICES:
        procs[dev] = subprocess.Popen(
            upy.board_cmd(DEVICE_SCRIPT, upy.ESP32_HEAP, upy.is_frozen(DEMO, dev)),
            cwd=upy.device_dir(DEMO, dev), env=upy.board_env(DEMO, dev),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = {}

    def follow(dev, p):
        for line in p.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "PHASE":
                progress.event(dev, rest)
            elif word == "STATUS":
                results[dev] = rest
                progress.event(dev, "result: " + rest)
        p.wait()

    threads = [threading.Thread(target=follow, args=(d, p)) for d, p in procs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def summary(title, progress, results, fleet_rows):
    print("\n%s" % title)
    print("  %-10s %-10s %15s %16s" % ("device", "result", "to stored (host)", "config version"))
    for dev in DEVICES:
        row = progress.rows.get(dev, {})
        stored = row.get("stored")
        r = fleet_rows.get(dev, {})
        print("  %-10s %-10s %15s %16s" % (dev, results.get(dev, "no answer"),
                                           "%.2f s" % stored if stored is not None else "-",
                                           "%s of %s" % (r.get("ack") or "-", r.get("ver"))))


def main():
    keep = "--keep" in sys.argv
    # a TERM (as from a CI's timeout) stops the box too, like Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not upy.MICROPYTHON_FW.exists():
        sys.exit("demo: the interpreters are not built: run make demo")
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    port = free_port()
    pw = passphrase.generate(secrets.token_bytes)
    env = dict(os.environ, CFGBOX_PASSPHRASE=pw)

    print("1. A new fleet, with the CLI (python -m tools.fleet)")
    out = cli("init", "--box", "cfgbox-demo", "--ssid", "demo-fleet", "--port", str(port),
              env=env)
    print("   " + out.strip().replace("\n", "\n   "))
    print("   admin passphrase: %s" % pw)
    for dev in DEVICES:
        cli("enroll", dev, env=env)
    (DEMO / "defaults.json").write_text(json.dumps(DEFAULTS))
    cli("set-config", str(DEMO / "defaults.json"), env=env)
    print("   enrolled %s ... %s; fleet defaults set (wifi, mqtt over TLS, an API key)"
          % (DEVICES[0], DEVICES[-1]))

    print("2. The box: its store copied to an emulated ESP32 (as make flash-box does), "
          "power on")
    from tools import fleet as fleetcli

    upy.provision_board(DEMO, "box", "configurator", frozen=True)
    store = DEMO / "store-copy"
    fleetcli.unpack(DEMO / "fleet.cfgbox", store)
    upy.DeviceFS(DEMO, "box").put_tree(store)
    shutil.rmtree(store)
    world = upy.World(DEMO)
    log = open(DEMO / "box.log", "w")
    box = subprocess.Popen(upy.board_cmd("emu_boot.run_main()", upy.ESP32_HEAP, True),
                           cwd=upy.device_dir(DEMO, "box"),
                           env=upy.board_env(DEMO, "box", cold=True), stdout=log,
                           stderr=subprocess.STDOUT)
    ok = False
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.4.1", port), 0.2).close()
                break
            except OSError:
                if box.poll() is not None:
                    sys.exit("demo: the box did not start:\n" + (DEMO / "box.log").read_text())
                time.sleep(0.025)
        adm = AdminClient(port)
        state = adm.get("session")[1]
        print("   box %s is up and %s" % (state["box"], "sealed" if state["sealed"] else "open"))

        print("3. Unlock, as the admin page does: the passphrase and the browser's clock")
        s, out, _ = adm.login(pw, world.now())
        if s != 200:
            sys.exit("demo: unlock refused: %s" % out)
        print("   unlocked; clock trusted: %s" % adm.get("session")[1]["clock_ok"])

        print("4. The devices get their bootstrap secrets (as make flash-client writes them)")
        os.environ["CFGBOX_PASSPHRASE"] = pw
        f = fleetcli.Fleet(DEMO / "fleet.cfgbox")
        for dev in DEVICES:
            upy.device_run("from client_fw.bootstrap import write as write_bootstrap\n"
                           "from shared.board import Board\n"
                           "write_bootstrap(Board(), %r)" % (f.bootstrap(dev),),
                           DEMO, dev, bundle="client")
        print("   10 devices flashed with the client bundle and their secrets")

        print("5. Power on all 10 devices at once")
        p1 = Progress()
        r1 = run_devices(p1)
        rows = {d["dev"]: d for d in adm.get("fleet")[1]["devices"]}
        summary("Summary: first provisioning", p1, r1, rows)
        first = [d for d in DEVICES if r1.get(d) == "ok" and rows[d]["ack"] == rows[d]["ver"]]

        print("\n6. Change one fleet setting (the MQTT host) on the admin API, devices check "
              "again")
        cfg = adm.get("config")[1]["config"]
        cfg["mqtt"]["host"] = "mqtt2.plant.local"
        s, out, _ = adm.post("defaults", {"config": cfg})
        if s != 200:
            sys.exit("demo: the change was refused: %s" % out)
        print("   fleet config is now version %d" % out["rev"])
        p2 = Progress()
        r2 = run_devices(p2)
        rows = {d["dev"]: d for d in adm.get("fleet")[1]["devices"]}
        summary("Summary: after the change", p2, r2, rows)
        second = [d for d in DEVICES if r2.get(d) == "ok" and rows[d]["ack"] == out["rev"]]
        ok = len(first) == len(second) == len(DEVICES)
        print("\n%d of %d devices provisioned, %d of %d picked up version %d: %s"
              % (len(first), len(DEVICES), len(second), len(DEVICES), out["rev"],
                 "all good" if ok else "NOT all"))
        print("Admin page: http://127.0.4.1:%d/admin (passphrase above); box console: %s"
              % (port, (DEMO / "box.log").relative_to(ROOT)))
        if keep:
            print("KEEP=1: the box keeps running; Ctrl-C stops it.")
            try:
                box.wait()
            except KeyboardInterrupt:
                pass
    finally:
        box.terminate()
        box.wait(10)
        log.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
