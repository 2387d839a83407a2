# Test harness: a box and client devices as emulated boards (separate 32-bit MicroPython processes
# with their own flash, NVS and clock) on the emulated AP, running the bundles of `make build`.
import json
import socket
import subprocess
import time

import upy_harness as upy

SSID = "cfgbox-test"
PSK = "fleet passphrase 1"
BOX_ID = "cfgbox-7c2a"
PASSPHRASE = "test-fleet pass phrase 9!"  # strong enough for passphrase.check
LOCK_KEY = "sealed-ap-key-1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.4.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sealed_fleet(tmp_path, cfg):
    """A box set up without auto-unseal, ``sensor-1`` enrolled, ``cfg`` the defaults, powered
    on: sealed, its clock not set (the admin page's and the sealed box's tests)."""
    f = Fleet(tmp_path, set_time=False, auto_unseal=False)
    f.enroll("sensor-1")
    f.set_defaults(cfg)
    f.start_box(cold=True)
    return f


class Fleet:
    """One box and its devices. Operator calls (boxrun) run as `mpremote exec` does on a real
    box: the server stops, the call runs, the box restarts by a software reset, so the clock and
    whatever was set survive but the server's RAM (nonces, sessions) does not."""

    def __init__(self, tmp_path, max_clients=8, set_time=True, box="box", port=None,
                 box_frozen=True, clients_frozen=False, auto_unseal=True, app=False,
                 box_heap=upy.ESP32_HEAP):
        """The box runs frozen firmware by default, as it must on a 110 KB ESP32 (README); with
        ``box_frozen=False`` it runs the .mpy bundle from its flash, as stock firmware does
        (on a PSRAM board: ``box_heap=upy.PSRAM_HEAP``); the clients run the .mpy bundle from
        their flash unless ``clients_frozen``; ``app``: their flash holds the reference
        application too (the "app" bundle, app.py at its root)."""
        self.dir = tmp_path
        self.client_bundle = "client+app" if app else "client"
        self.box_frozen = box_frozen
        self.box_heap = box_heap
        self.clients_frozen = clients_frozen
        self.world = upy.World(tmp_path)
        self.box = box  # the box's board name (a second one plays an evil twin)
        self.port = port or free_port()
        self.box_proc = None
        self.boots = {}  # each enrolled device's bootstrap secrets, as enroll printed them
        # auto-unseal by default: the tests of the device side start an unlocked box; the
        # sealed box has tests of its own (test_sealed.py, test_admin_browser.py)
        self.boxrun(f"from configurator_fw import admin\n"
                    f"admin.setup({BOX_ID!r}, {SSID!r}, {PSK!r}, {max_clients}, {self.port}, "
                    f"{PASSPHRASE!r}, {auto_unseal}, {LOCK_KEY!r})")
        self.auto_unseal = auto_unseal
        if set_time:
            self.set_time()

    # -- the operator's side
    def boxrun(self, script, heap=None):
        heap = heap or self.box_heap
        running = self.box_proc is not None
        if running:
            self.stop_box()
        r = upy.device_run(script, self.dir, self.box, bundle="configurator", heap=heap,
                           frozen=self.box_frozen)
        if running:
            self.start_box()
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def admin(self, call):
        """An admin.py call over mpremote: ``call`` is its Python text, e.g. "devices()"; the
        box opens by its auto-unseal key, or with the passphrase if auto-unseal is off."""
        pw = "" if self.auto_unseal else f", passphrase={PASSPHRASE!r}"
        head, _, args = call.partition("(")
        sep = ", " if args.strip() != ")" else ""
        call = pw and f"{head}({args[:-1]}{sep}{pw[2:]})" or call
        return self.boxrun(f"from configurator_fw import admin\nadmin.{call}")

    def set_time(self, unix=None):
        """The operator sets the box's clock (UTC), as the README says."""
        return self.admin(f"set_time({unix or self.world.now()})")

    def enroll(self, dev):
        out = self.admin(f"enroll({dev!r})")
        boot = json.loads(out.splitlines()[0])
        self.write_bootstrap(dev, boot)
        self.boots[dev] = boot
        return boot

    def write_bootstrap(self, dev, boot):
        """Commission ``dev``: its bootstrap secrets (as enroll printed them) into its NVS."""
        self.devrun(dev, "from client_fw.bootstrap import write as write_bootstrap\n"
                    "from shared.board import Board\nimport json\n"
                    f"write_bootstrap(Board(), json.loads({json.dumps(boot)!r}))")

    def set_defaults(self, cfg):
        self.admin(f"set_defaults({json.dumps(cfg)!r})")

    def set_overrides(self, dev, cfg):
        self.admin(f"set_overrides({dev!r}, {json.dumps(cfg)!r})")

    def devices(self):
        out = self.admin("devices()")
        rows = [json.loads(line) for line in out.splitlines()]
        return {d["dev"]: d for d in rows}

    # -- the box serving
    def start_box(self, cold=False, heap=None):
        heap = heap or self.box_heap
        """Boot the box and run its main.py; ``cold`` is a power-on (the clock starts at 2000)."""
        self.box_log = open(self.dir / (self.box + ".log"), "a")
        self.box_proc = subprocess.Popen(
            upy.board_cmd("emu_boot.run_main()", heap, upy.is_frozen(self.dir, self.box)),
            cwd=upy.device_dir(self.dir, self.box),
            env=upy.board_env(self.dir, self.box, cold), stdout=self.box_log,
            stderr=subprocess.STDOUT)
        end = time.monotonic() + upy.HANG_S  # a hang guard only: a loaded host boots slowly
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.4.1", self.port), 0.2).close()
                return
            except OSError:
                if self.box_proc.poll() is not None:
                    break
                time.sleep(0.025)  # host time, only to wait for the process to listen
        self.stop_box()
        raise RuntimeError("box did not start: " + self.box_log_text())

    def box_log_text(self):
        """The box's console so far ("" before its first start)."""
        log = self.dir / (self.box + ".log")
        return log.read_text() if log.exists() else ""

    def stop_box(self):
        """Stop the box's firmware: its AP goes off the air with it, as a board's does (the
        process cannot withdraw it when killed, so the harness does)."""
        if self.box_proc:
            self.box_proc.terminate()
            self.box_proc.wait(10)
            self.box_log.close()
            self.box_proc = None
            for ssid in (SSID, SSID + "-locked"):
                (self.dir / "ap" / (ssid.encode().hex() + ".json")).unlink(missing_ok=True)

    # -- devices
    def devrun(self, dev, script, heap=upy.ESP32_HEAP, timeout=upy.HANG_S):
        r = upy.device_run(script, self.dir, dev, bundle=self.client_bundle, heap=heap,
                           timeout=timeout, frozen=self.clients_frozen)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def set_boot(self, dev, **fields):
        """Change fields of ``dev``'s bootstrap in its NVS (hex for dk and totp), as a wrong or
        a later commissioning would leave it."""
        self.devrun(dev, "from shared.board import Board\nfrom client_fw import bootstrap\n"
                    "b = Board()\nboot = bootstrap.read(b)\n"
                    "boot['dk'], boot['totp'] = boot['dk'].hex(), boot['totp'].hex()\n"
                    "boot.update(%r)\nbootstrap.write(b, boot)" % fields)

    def boot_cmd(self, dev, publishes=1, attempts=None, heap=upy.ESP32_HEAP, cold=False,
                 app=None, before="", env=None):
        """(argv, cwd, env) that power ``dev`` on (``cold``) or reset it and run its main.py as
        the port does: the check, then its app.py. ``app`` replaces the flash's app.py (None:
        the reference application, stopped after ``publishes`` status messages or ``attempts``
        failed connects); ``before`` runs first (to inject a fault)."""
        if app is None:
            app = ("from client_fw.apps import mqtt_status\n\n\ndef main(config):\n"
                   "    mqtt_status.main(config, publishes=%r, attempts=%r)\n"
                   % (publishes, attempts))
        self.fs(dev).write("app.py", app.encode())
        argv = upy.board_cmd(before + "emu_boot.run_main()", heap, upy.is_frozen(self.dir, dev))
        return argv, upy.device_dir(self.dir, dev), upy.board_env(self.dir, dev, cold, env)

    def boot(self, dev, timeout=3 * upy.HANG_S, **kw):
        """Boot ``dev`` (boot_cmd's arguments) to the end of its app; the finished process."""
        argv, cwd, env = self.boot_cmd(dev, **kw)
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def check(self, dev, force=True, now=None, attempts=1, heap=upy.ESP32_HEAP):
        """Run one check on ``dev``: returns (status, its stored config or None), the config as
        the host reads it from the device's flash (stored_config)."""
        out = self.devrun(dev, "from client_fw.device import Device\n"
                          "from shared.board import Board\n"
                          "d = Device(Board(), sleep_ms=lambda ms: None)\n"
                          f"s = d.check(force={force}, attempts={attempts}, now={now!r})\n"
                          "print('STATUS', s)", heap=heap)
        lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        return lines["STATUS"], self.stored_config(dev)

    def stored_config(self, dev):
        """``dev``'s stored config opened on the host with its keys (the client's storage format,
        docs/PROTOCOL.md s.3), or None when there is none or it does not open."""
        import hashlib

        from hostbox import source
        from shared import protocol, records
        from shared.sealedbox import SealError, SealKey

        fs = self.fs(dev)
        if not fs.exists("config.bin"):
            return None
        raw = fs.read("config.bin")
        from tools import nvsimage

        uid = hashlib.sha256(b"emu-uid:" + dev.encode()).digest()[:6]
        nvs = nvsimage.read((upy.device_dir(self.dir, dev) / "nvs.bin").read_bytes())
        uid += nvs.get(("cfgbox", "salt"), b"")  # the device's own salt (client_fw/bootstrap)
        boot = self.boots[dev]
        k = protocol.long_term_key(bytes.fromhex(boot["dk"]), bytes.fromhex(boot["totp"]))
        key = SealKey(protocol.storage_key(k, uid))
        ver = int.from_bytes(raw[:4], "big")
        try:
            plain = bytes(key.open(raw[4:], protocol.tr("cfgbox/2 store", dev, ver)))
        except SealError:
            return None
        return records.unflatten(records.RecordReader(source(plain)))

    def fs(self, dev):
        """``dev``'s flash, seen from the host (while it is not running)."""
        return upy.DeviceFS(self.dir, dev)

    def stored(self, dev):
        return self.fs(dev).read("config.bin")
