# `make bench`'s client rows: the boot that main.py runs (the check, release(), the config
# reader, the app's start) bisected for its peak heap, the app's free heap after it, what the
# boot keeps, and a TLS MQTT session to a real mosquitto (GC heap, and mbedTLS's C heap as
# emutls counts it), for a 4 KB config and a 16 KB one with a 14 KB CA bundle, .mpy and frozen.
import json
import tempfile
from pathlib import Path

import upy_harness as upy
from fleet import Fleet
from mqttworld import SiteWorld
from test_app import other_ca

KB = 1024
# the app's start, as main.py calls it: what it is told, and what it has
BOOT_PROBE = """
import gc


def main(config):
    gc.collect()
    print('APP', config.state, config.version, gc.mem_free())
"""
BEFORE = "import gc\ngc.collect()\nprint('START', gc.mem_free())\n"
TLS_PROBE = """
import gc
import emutls
from client_fw.apps import mqtt_status


def main(config):
    app = mqtt_status.StatusApp(config, None)
    app.prepare()
    from umqtt.simple import MQTTClient

    app.MQTTClient = MQTTClient
    assert app.join()
    gc.collect()
    emutls.reset_peak()
    client = app.connect()
    client.publish(app.topic, app.status(), retain=True)
    gc.collect()
    print('TLS', gc.mem_free(), emutls.heap()[0], emutls.heap()[1])
    client.disconnect()
"""


READER = """
import gc
from shared.board import Board
gc.collect()
before = gc.mem_free()
from client_fw.appconfig import Config
config = Config(Board(), 'ok')
gc.collect()
print('READER', config.state, before - gc.mem_free())
"""


class Client:
    """A box, the site and one enrolled device whose config is about ``size`` bytes of JSON,
    its CA value a bundle of real certificates ending with the broker's."""

    def __init__(self, size, frozen):
        d = Path(tempfile.mkdtemp(prefix="bench-boot-"))
        self.f = Fleet(d, app=True, clients_frozen=frozen)
        self.f.enroll("c1")
        self.w = SiteWorld(self.f, ["c1"], ca_extra="")
        base = json.loads(json.dumps(self.w.defaults))
        room = size - len(json.dumps(base)) - 120  # the device's overrides: ~100 B
        bundle = ""
        while True:  # other CAs' certificates first, as much as fits, the broker's last
            more = bundle + other_ca("site CA %d" % len(bundle))
            if len(json.dumps(more)) > room:
                break
            bundle = more
        base["mqtt"]["ca"] = bundle + base["mqtt"]["ca"]
        self.f.set_defaults(base)
        self.size = len(json.dumps(base))
        self.value = len(base["mqtt"]["ca"])
        self.f.start_box()

    def boot(self, heap, app=BOOT_PROBE, again=True):
        """One boot with a fresh download at ``heap`` bytes: its output, or None if it failed.
        ``again``: the flash is put back as it was, so that the next boot downloads again."""
        img = upy.flash_image(self.f.dir, "c1")
        snapshot = img.read_bytes()
        self.f.world.advance(30)  # a new TOTP step for each try
        r = self.f.boot("c1", heap=heap, app=app, before=BEFORE)
        if again:
            img.write_bytes(snapshot)
        return r.stdout if r.returncode == 0 else None

    def boots(self, heap):
        out = self.boot(heap)
        return bool(out) and "cfgbox: ok" in out and "APP provisioned" in out

    def close(self):
        self.f.stop_box()
        self.w.close()


def min_heap(c, lo=8 * KB, hi=256 * KB, step=256):
    if not c.boots(hi):
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if c.boots(mid):
            hi = mid
        else:
            lo = mid
    return hi


def figures(c):
    """At the board's 110 KB: (free at the app's start, kept by the boot, free with a TLS
    session open, mbedTLS C heap in use then, its peak)."""
    out = c.boot(upy.ESP32_HEAP) or ""
    start = app = None
    for line in out.splitlines():
        if line.startswith("START "):
            start = int(line.split()[1])
        elif line.startswith("APP provisioned"):
            app = int(line.split()[3])
    tls = c.boot(upy.ESP32_HEAP, TLS_PROBE, again=False) or ""
    session = next((list(map(int, line.split()[1:])) for line in tls.splitlines()
                    if line.startswith("TLS ")), [None, None, None])
    kept = start - app if start is not None and app is not None else None
    # the reader's own share of that: its modules and the object, on the same provisioned board
    reader = next((int(line.split()[2]) for line in c.f.devrun("c1", READER).splitlines()
                   if line.startswith("READER provisioned")), None)
    return app, kept, reader, *session


def rows(row):
    out = []
    for frozen, how in ((False, ".mpy bundle"), (True, "frozen firmware")):
        peaks = {}
        for size in (4, 16):
            c = Client(size * KB, frozen)
            try:
                peak = min_heap(c)
                free, kept, reader, tls_free, c_now, c_peak = figures(c)
            finally:
                c.close()
            peaks[size] = peak
            what = "%d KB config (%.1f KB JSON, CA value %.1f KB), %s" % (
                size, c.size / KB, c.value / KB, how)
            target = 32 if frozen else 40
            out.append(row("client boot peak heap, main.py to the app's start: " + what,
                           "over 256 KB" if peak is None else round(peak / KB, 2),
                           "<= %d KB" % target, peak is not None and peak <= target * KB,
                           "KB"))
            out.append(row("  the app's free heap at its start (110 KB board)",
                           None if free is None else round(free / KB, 2), ">= 90 KB",
                           free is not None and free >= 90 * KB, "KB"))
            out.append(row("  heap the boot keeps at the app's start (all of it)",
                           None if kept is None else round(kept / KB, 2), "(figure)", True,
                           "KB"))
            out.append(row("  of which the config reader's own (its modules, the object)",
                           None if reader is None else round(reader / KB, 2), "(figure)",
                           True, "KB"))
            left = None if None in (kept, reader) else kept - reader
            out.append(row("  of which left by the provisioning code after release()",
                           None if left is None else round(left / KB, 2), "<= 6 KB",
                           left is not None and left <= 6 * KB, "KB"))
            out.append(row("  GC heap free with a TLS MQTT session open (110 KB board)",
                           None if tls_free is None else round(tls_free / KB, 2), "(figure)",
                           True, "KB"))
            out.append(row("  mbedTLS C heap (IDF heap on a board): in use / peak",
                           "-" if c_now is None else "%.1f / %.1f" % (c_now / KB,
                                                                     c_peak / KB),
                           "(figure)", True, "KB"))
        grows = (None if None in peaks.values() else round((peaks[16] - peaks[4]) / KB, 2))
        out.append(row("client boot peak growth, 16 KB vs 4 KB config (%s)" % how, grows,
                       "<= 1 KB", grows is not None and grows <= 1, "KB"))
    app_size = sum(p.stat().st_size for p in upy.BUNDLES["app"].rglob("*.mpy"))
    out.append(row("reference app bundle (.mpy, umqtt.simple included; optional)",
                   round(app_size / KB, 2), "(figure)", True, "KB"))
    return out
