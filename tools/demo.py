"""`make demo`: the operator's whole story on the board-true harness, no hardware, no service.

A fleet is made with the CLI (tools/fleet.py): N devices enrolled, the site's WiFi in the
fleet's config, and the broker's material (`fleet broker`: a CA, the broker's certificate and a
credential per device, each device's in its own config). The box's store goes to an emulated
ESP32 (32-bit MicroPython at 110 KB, frozen firmware, LittleFS flash, softAP, lwIP's sockets) as
`make flash-box` copies it to a real one; it powers on sealed and is unlocked the way the admin
page does it. The site is up: its WiFi (an emulated AP with its own addresses) and Debian's
mosquitto, TLS only, a password per device and an ACL per device. N emulated devices get the
client bundle, the reference application and their bootstrap secrets, and power on together:
each provisions through the box's slots, joins the site's WiFi, connects to the broker over TLS
with its own credential and publishes its status, which the demo sees arrive (paho-mqtt). Then
the operator rotates every device's MQTT credential: the broker refuses the old ones, each
device asks the box for its new config and reconnects. Exit status 0 only if every device
connected both times. `--keep` leaves the box and the broker running.
"""
import argparse
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host_tests"), str(ROOT / "tools" / "hostlib"), str(ROOT)]

import upy_harness as upy  # noqa: E402
from adminhttp import AdminClient  # noqa: E402
from fleet import free_port  # noqa: E402
from mqttworld import (BROKER_IP, BROKER_NAME, SITE_KEY, SITE_NET, SITE_SSID,  # noqa: E402
                       Monitor, Mosquitto, connack)
from mqttworld import free_port as free_broker_port  # noqa: E402
from serialboard import SerialBoard  # noqa: E402

from shared import passphrase  # noqa: E402
from tools.broker import Broker  # noqa: E402

DEMO = ROOT / "build" / "demo"
SLOTS = 8  # the box admits 8 stations at once (fleet init's default, stock firmware's DHCP pool)
DEFAULTS = {"wifi": [{"ssid": "plant-office", "password": "office-wifi-5510"},
                     {"ssid": SITE_SSID, "password": SITE_KEY}],
            "api_keys": {"influx": "demo-influx-token"}, "ntp": "pool.ntp.org",
            "app": {"status_s": 600}}
# main.py as on the board, with the provisioning phases shown (an LED pattern on a board)
BEFORE = "from client_fw import provision\nprovision.progress = lambda p: print('PHASE', p)\n"
COLUMNS = ("provisioned", "wifi", "mqtt", "seen")


def deploy(target, *args, fleet):
    """One of the README's make commands for a real board, run as the README gives it."""
    env = dict(os.environ, FLEET=fleet)
    r = subprocess.run(["make", "-s", "--no-print-directory", target, *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        sys.exit("demo: make %s %s failed:\n%s%s" % (target, " ".join(args), r.stdout, r.stderr))
    return r.stdout


def cli(*args, env):
    r = subprocess.run([sys.executable, "-m", "tools.fleet", "--file",
                        str(DEMO / "fleet.cfgbox"), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("demo: fleet %s failed: %s" % (" ".join(args[:1]), r.stderr.strip()))
    return r.stdout


class Board:
    """One emulated device running main.py (the check, then the reference app) for ever."""

    def __init__(self, dev, t0, show):
        self.dev, self.t0, self.show = dev, t0, show
        self.events = {}  # what -> host seconds since the box's power-on, per round
        self.lines = []
        argv = upy.board_cmd(BEFORE + "emu_boot.run_main()", upy.ESP32_HEAP,
                             upy.is_frozen(DEMO, dev))
        self.proc = subprocess.Popen(argv, cwd=upy.device_dir(DEMO, dev),
                                     env=upy.board_env(DEMO, dev, cold=True),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def mark(self, what):
        t = time.monotonic() - self.t0
        times = self.events.setdefault(what, [])
        times.append(t)
        self.show(self.dev, what, t)

    def first(self, what, after, before):
        """The first time ``what`` happened in [after, before)."""
        return next((t for t in self.events.get(what, []) if after <= t < before), None)

    def _follow(self):
        for line in self.proc.stdout:
            line = line.rstrip()
            self.lines.append(line)
            if line == "PHASE stored" or line.startswith("app: checked with the box: ok"):
                self.mark("provisioned")  # at boot, or by the app (a full AP at boot)
            elif line.startswith("app: joined"):
                self.mark("wifi")
            elif line.startswith("app: connected"):
                self.mark("mqtt")
            elif line.startswith("app: mqtt: not authorized"):
                self.mark("refused by the broker")

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)
        self.thread.join(5)
        (DEMO / (self.dev + ".log")).write_text("\n".join(self.lines) + "\n")


def table(title, boards, after, before, seen):
    """Per device, when each step first happened between ``after`` and ``before`` (host s
    since the box's power-on), and when the demo saw its status arrive."""
    print("\n" + title)
    print("  %-10s %12s %12s %14s %14s" % ("device", "provisioned", "WiFi joined",
                                           "MQTT connected", "status seen"))
    for b in boards:
        cells = [b.first(c, after, before) for c in COLUMNS[:3]] + [seen.get(b.dev)]
        print("  %-10s " % b.dev + " ".join(
            "%12s" % ("%.1f s" % c if c is not None else "-") for c in cells[:2]) +
            " %14s %14s" % tuple("%.1f s" % c if c is not None else "-" for c in cells[2:]))


def wait_all(monitor, devices, pred, t0, limit):
    """{dev: host seconds since t0 when its status matching pred arrived}, until all or limit."""
    got = {}
    end = time.monotonic() + limit
    while len(got) < len(devices) and time.monotonic() < end:
        with monitor.cond:
            for at, topic, body in monitor.messages:
                dev = topic.split("/")[1]
                if dev in devices and dev not in got and pred(dev, body):
                    got[dev] = at - t0
            monitor.cond.wait(0.5)
    return got


def post_retrying(adm, path, body, tries=20):
    """A change on the admin API as the page makes it: a box that sheds the connection (busy,
    503 with Retry-After) is asked again after the time it names."""
    for _ in range(tries):
        s, out, r = adm.request("POST", "/admin/api/" + path, body, check=False)
        if s != 503:
            return s, out
        time.sleep(min(int(r.getheader("Retry-After") or 1), 5))
    return s, out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=25)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    n = a.devices
    devices = ["sensor-%03d" % i for i in range(1, n + 1)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a TERM stops everything, as ^C
    if not upy.MICROPYTHON_FW.exists():
        sys.exit("demo: the interpreters are not built: run make demo")
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    port = free_port()
    pw = passphrase.generate(secrets.token_bytes)
    env = dict(os.environ, CFGBOX_PASSPHRASE=pw)
    started = time.monotonic()

    print("1. A new fleet with the CLI (python -m tools.fleet): %d devices, the site's WiFi, "
          "the broker's material" % n)
    out = cli("init", "--box", "cfgbox-demo", "--ssid", "demo-fleet", "--port", str(port),
              env=env)
    print("   " + out.strip().replace("\n", "\n   "))
    print("   admin passphrase: %s" % pw)
    cli("enroll", *devices, env=env)
    (DEMO / "defaults.json").write_text(json.dumps(DEFAULTS))
    cli("set-config", str(DEMO / "defaults.json"), env=env)
    mqtt_port = free_broker_port()
    out = cli("broker", "--dir", str(DEMO / "broker"), "--host", BROKER_NAME, "--bind",
              BROKER_IP, "--mqtt-port", str(mqtt_port), env=env)
    print("   enrolled %s ... %s; wifi: plant-office, then %s" % (devices[0], devices[-1],
                                                                   SITE_SSID))
    print("   " + out.strip())

    print("2. The site: its WiFi %s (addresses %s.x) and mosquitto on %s:%d, TLS only"
          % (SITE_SSID, SITE_NET, BROKER_NAME, mqtt_port))
    site = upy.Site(DEMO, SITE_SSID, SITE_KEY, SITE_NET, {BROKER_NAME: BROKER_IP})
    site.up()
    broker = Broker(DEMO / "broker")
    mosq = Mosquitto(broker).start()
    monitor = Monitor(broker)
    print("   broker up; the demo watches devices/+/status as %s" % broker.monitor()["user"])

    print("3. The box: an emulated ESP32 with the firmware of `make firmware` (the box frozen "
          "in) on a serial line; `make flash-box` deploys to it, as to a real one")
    os.environ["CFGBOX_PASSPHRASE"] = pw
    fleet_file = str(DEMO / "fleet.cfgbox")
    with SerialBoard(DEMO, "box", frozen=True) as line:
        print("   " + deploy("flash-box", "PORT=" + line.path, fleet=fleet_file).strip()
              .replace("\n", "\n   "))
    print("4. %d devices, each a bare ESP32 with stock MicroPython on a serial line: "
          "`make flash-client PORT=... DEVICE=... APP=1` copies the client bundle and the "
          "reference app and writes the device's secrets, with the real mpremote" % n)

    def flash(dev):
        with SerialBoard(DEMO, dev) as line:
            deploy("flash-client", "PORT=" + line.path, "DEVICE=" + dev, "APP=1",
                   fleet=fleet_file)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(flash, devices))
    from tools import fleet as fleetcli

    f = fleetcli.Fleet(DEMO / "fleet.cfgbox")  # the operator's view, for the rotation below
    world = upy.World(DEMO)
    boards, box, log, ok = [], None, open(DEMO / "box.log", "w"), False
    lock = threading.Lock()

    print("   done (%.0f s so far)" % (time.monotonic() - started))

    def show(dev, what, t):
        with lock:
            print("  %7.1f s  %-10s %s" % (t, dev, what), flush=True)

    try:
        print("5. Power on the box (sealed) and unlock it, as the admin page does")
        t0 = time.monotonic()
        box = subprocess.Popen(upy.board_cmd("emu_boot.run_main()", upy.ESP32_HEAP, True),
                               cwd=upy.device_dir(DEMO, "box"),
                               env=upy.board_env(DEMO, "box", cold=True), stdout=log,
                               stderr=subprocess.STDOUT)
        for _ in range(400):
            try:
                socket.create_connection(("127.0.4.1", port), 0.2).close()
                break
            except OSError:
                if box.poll() is not None:
                    sys.exit("demo: the box did not start:\n" + (DEMO / "box.log").read_text())
                time.sleep(0.025)
        adm = AdminClient(port)
        s, out, _ = adm.login(pw, world.now())
        if s != 200:
            sys.exit("demo: unlock refused: %s" % out)
        print("   unlocked at %.1f s; the fleet's AP is up" % (time.monotonic() - t0))

        print("6. Power on all %d devices together" % n)
        boards = [Board(dev, t0, show) for dev in devices]
        seen1 = wait_all(monitor, devices, lambda d, b: b.get("online") and b.get("ver"), t0,
                         60 + 2 * n)
        v1 = {d: b for d, b in ((d, monitor.wait_for(
            lambda t, b, d=d: t == "devices/%s/status" % d and b.get("ver"), 0)) for d in seen1)}
        t1 = time.monotonic() - t0
        table("Summary: first start (host seconds since the box's power-on)", boards, 0, t1,
              seen1)

        print("\n7. Rotate every device's MQTT credential: the box gets the new ones (admin "
              "API), the broker too, and restarts")
        new = {}
        old = {dev: f.store.overrides(dev)["mqtt"]["password"] for dev in devices}
        # the page's session ended while the fleet came up (10 minutes idle, on the box's
        # clock, which the emulated boards' waits move on): the operator logs in again
        s, out, _ = adm.login(pw)
        if s != 200:
            sys.exit("demo: login refused: %s" % out)
        for dev in devices:
            new[dev] = secrets.token_urlsafe(24)
            s, out = post_retrying(adm, "overrides", {"dev": dev, "config": {
                "mqtt": {"user": dev, "password": new[dev]}}})
            if s != 200:
                sys.exit("demo: the box refused %s's new credential: %s" % (dev, out))
        broker.write(new)
        mosq.restart()
        print("   %d credentials rotated; broker restarted at %.1f s" % (
            n, time.monotonic() - t0))
        seen2 = wait_all(monitor, devices, lambda d, b: d in v1 and b.get("ver", 0) > v1[d][
            "ver"], t0, 60 + 2 * n)
        table("Summary: after the rotation (provisioned: the new config fetched)", boards, t1,
              float("inf"), seen2)
        old_refused = sum(1 for d in devices if connack(broker, d, old[d]) == 5)
        print("\n   the broker refuses the old credential: %d of %d devices" % (old_refused, n))

        both = [d for d in devices if d in seen1 and d in seen2]
        radio = math.ceil(n / SLOTS)
        first_all = max(seen1.values()) if len(seen1) == n else None
        print("\n%d of %d devices connected at first start, %d of %d again after the rotation"
              % (len(seen1), n, len(seen2), n))
        if first_all is not None:
            print("The whole fleet reported in %.1f s of host time after the box's power-on (%d "
                  "emulated boards on %d cores; the emulated radio is not timed: a board's waits "
                  "move the shared clock, not the host's). On a real radio, %d devices through "
                  "%d slots need %d-%d s (association 1-3 s x %d waves)"
                  % (first_all, n + 1, os.cpu_count(), n, SLOTS, radio, 3 * radio, radio))
        ok = len(both) == n and old_refused == n
        print("Result: %s (set-up and run took %.0f s)" % (
            "all good" if ok else "NOT all", time.monotonic() - started))
        if not ok:
            for b in boards:
                if b.dev not in both:
                    print("--- %s, last lines:\n    %s" % (b.dev, "\n    ".join(b.lines[-8:])))
        if a.keep:
            print("KEEP=1: box and broker keep running. Admin page: http://127.0.4.1:%d/admin "
                  "(passphrase above). Ctrl-C stops them." % port)
            for b in boards:
                b.stop()
            try:
                box.wait()
            except KeyboardInterrupt:
                pass
    finally:
        for b in boards:
            b.stop()
        if box:
            box.terminate()
            box.wait(10)
        log.close()
        monitor.close()
        mosq.stop()
        site.down()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
