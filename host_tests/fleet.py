# Test harness: a box and emulated devices as separate MicroPython processes on the emulated AP,
# running the .mpy bundles of `make build`.
import json
import socket
import subprocess
import time

import upy_harness as upy

SSID = "cfgbox-test"
PSK = "fleet passphrase 1"
BOX_ID = "cfgbox-7c2a"


def free_port():
    s = socket.socket()
    s.bind(("127.0.4.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fleet:
    def __init__(self, tmp_path, max_clients=10):
        self.dir = tmp_path
        self.port = free_port()
        self.box_proc = None
        self.boxrun(f"from configurator_fw import admin\n"
                    f"admin.setup({BOX_ID!r}, {SSID!r}, {PSK!r}, {max_clients}, {self.port})")

    def boxrun(self, script, heap=upy.ESP32_HEAP):
        r = upy.device_run(script, self.dir, "box", root=upy.BUNDLES["configurator"], heap=heap)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def enroll(self, dev):
        out = self.boxrun(f"from configurator_fw import admin\nadmin.enroll({dev!r})")
        boot = json.loads(out.splitlines()[0])
        self.write_bootstrap(dev, boot)
        return boot

    def write_bootstrap(self, dev, boot):
        """Commission ``dev``: its bootstrap secrets (as enroll printed them) into its NVS."""
        self.devrun(dev, "from client_fw.provision import write_bootstrap\n"
                    "from shared.board import Board\nimport json\n"
                    f"write_bootstrap(Board(), json.loads({json.dumps(boot)!r}))")

    def set_defaults(self, cfg):
        self.boxrun(f"from configurator_fw import admin\nadmin.set_defaults({json.dumps(cfg)!r})")

    def set_overrides(self, dev, cfg):
        self.boxrun("from configurator_fw import admin\n"
                    f"admin.set_overrides({dev!r}, {json.dumps(cfg)!r})")

    def devices(self):
        out = self.boxrun("from configurator_fw import admin\nadmin.devices()")
        rows = [json.loads(line) for line in out.splitlines()]
        return {d["dev"]: d for d in rows}

    def start_box(self):
        fs = self.dir / "fs" / "box"
        env = dict(upy.os.environ, EMU_DIR=str(self.dir), EMU_DEVICE="box",
                   MICROPYPATH=f"{upy.EMU}:{upy.BUNDLES['configurator']}:.frozen")
        self.box_log = open(self.dir / "box.log", "w")
        self.box_proc = subprocess.Popen(
            [str(upy.MICROPYTHON), "-X", "heapsize=" + upy.ESP32_HEAP,
             str(upy.BUNDLES["configurator"] / "main.py")],
            cwd=fs, env=env, stdout=self.box_log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.4.1", self.port), 0.2).close()
                return
            except OSError:
                if self.box_proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("box did not start: " + (self.dir / "box.log").read_text())

    def stop_box(self):
        if self.box_proc:
            self.box_proc.terminate()
            self.box_proc.wait(10)
            self.box_log.close()
            self.box_proc = None

    def devrun(self, dev, script, heap=upy.ESP32_HEAP, timeout=60):
        r = upy.device_run(script, self.dir, dev, root=upy.BUNDLES["client"], heap=heap,
                           timeout=timeout)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def check(self, dev, force=True, now=None, attempts=1):
        """Run one check on ``dev``: returns (status, stored config or None)."""
        out = self.devrun(dev, "from client_fw.device import Device\n"
                          "from shared.board import Board\nimport json\n"
                          "d = Device(Board(), sleep_ms=lambda ms: None)\n"
                          f"s = d.check(force={force}, attempts={attempts}, now={now!r})\n"
                          "print('STATUS', s)\nprint('CONFIG', json.dumps(d.load_config()))")
        lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        return lines["STATUS"], json.loads(lines["CONFIG"])

    def stored_file(self, dev):
        return self.dir / "fs" / dev / "config.bin"
