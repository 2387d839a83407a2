# Flash operations per device exchange, counted at the emulated flash (host_tests/emu/emu_flash.py:
# every program and erase LittleFS asks of the block device), with N devices enrolled: the box's
# device API and one client's exchange run in one board, the HTTP hop replaced (upy.WIRE). Used
# by test_board_true (10 against 1,000 devices) and by `make bench`.
import json
import re

import upy_harness as upy
from fleet import Fleet

FILL = """
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from shared.board import Board
import gc
b = Board()
s = Store(b, Vault.auto(b))
for i in range({start}, {stop}):
    dev = 'sensor-%04d' % i
    e = s.enroll(dev)
    print('BOOT', dev, e['dk'].hex(), e['totp'].hex())
    if {overrides}:
        s.set_overrides(dev, {{'name': 'room %d' % i, 'mqtt': {{'user': dev,
                              'password': 'pw-%08d' % i}}}})
    if i % 16 == 0:
        gc.collect()
print('DONE')
"""

COUNT = """
import gc, json
from configurator_fw import admin
from configurator_fw.api import DeviceApi
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from client_fw import bootstrap, provision
from client_fw.storage import Storage
from shared.board import Board
import emu_boot

b = Board()
store = Store(b, Vault.auto(b))
api = DeviceApi(store)
clock = [max(1795219200, store.floor() + 60)]
{wire}
provision.post = wire
boot = bootstrap.read(b)
storage = Storage(b, boot['dev'], boot['dk'])


class Sink:  # the device's side of a download, read and checked, written nowhere (same flash)
    def save_stream(self, ver, sealed):
        buf = bytearray(256)
        while sealed.readinto(buf):
            pass
        sealed.verify()


sink = Sink()


def one(have):
    clock[0] += 30
    return provision.exchange(boot, sink if have == 0 else storage, have, '127.0.4.1',
                              '127.0.4.2', clock[0], lambda v: {{'ver': v}}, lambda s: None)


res, ver = one(0)
storage_ver = ver
r = emu_boot.bdev
for kind, have in (('unchanged', ver), ('download', 0)):
    for i in range(3):
        one(have)
    p0, e0, u0 = r.programs, r.erases, r.us
    for i in range({n}):
        out = one(have)
        assert out[1] == ver, out
    print('OPS', kind, (r.programs - p0) / {n}, (r.erases - e0) / {n}, (r.us - u0) / {n})
print('CLOCK', clock[0])
"""


PROBE = """
from configurator_fw import admin
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from client_fw import bootstrap
from shared.board import Board
b = Board()
bootstrap.write(b, admin.enroll('probe', board=b))
Store(b, Vault.auto(b)).set_overrides('probe', {'name': 'the probe'})
print('DONE')
"""


def fleet_of(tmp_path, n, overrides=True, cfg=None):
    """A box with ``n`` devices enrolled with overrides: ``n`` - 1 sensors, then "probe", whose
    bootstrap is in the box's own NVS (for COUNT, which runs both ends in the box's board)."""
    f = Fleet(tmp_path)
    f.set_defaults(cfg or {"wifi": [{"ssid": "plant", "password": "pw-wifi-1"}],
                           "mqtt": {"host": "m.example.net", "port": 8883}})
    for start in range(0, n - 1, 250):
        out = f.boxrun(FILL.format(start=start, stop=min(n - 1, start + 250),
                                   overrides=overrides))
        assert "DONE" in out
        for line in out.splitlines():
            if line.startswith("BOOT "):
                _, dev, dk, totp = line.split()
                f.boots[dev] = {"dev": dev, "dk": dk, "totp": totp}
    out = f.boxrun(PROBE)
    assert "DONE" in out
    f.boots["probe"] = json.loads(out.splitlines()[0])
    return f


def per_exchange(f, n=40):
    """{"unchanged": (programs, erases), "download": (...)} per exchange, in steady state; and
    under "us" the same kinds' host microseconds spent in the emulated flash driver (Python
    here, C on a board)."""
    out = f.boxrun(COUNT.format(n=n, wire=upy.WIRE))
    rows, us = {}, {}
    for kind, p, e, u in re.findall(r"OPS (\w+) ([\d.]+) ([\d.]+) ([\d.]+)", out):
        rows[kind] = (float(p), float(e))
        us[kind] = float(u)
    assert set(rows) == {"unchanged", "download"}, out
    # the world's clock past the steps this run used, for what the fleet does next
    end = int(re.search(r"CLOCK (\d+)", out).group(1))
    if end >= f.world.now():
        f.world.advance(end - f.world.now() + 60)
    f.flash_us = us
    return rows


if __name__ == "__main__":  # a quick look: python host_tests/flashcount.py N
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(per_exchange(fleet_of(Path(d), int(sys.argv[1])))))
