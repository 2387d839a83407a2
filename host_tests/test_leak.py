# No leak across exchanges: the box's device API and the client's exchange run in one emulated
# board (frozen firmware, ESP32 heap), the HTTP hop replaced by a direct call, and the heap after
# many exchanges is what it was after the first few.
import re

import upy_harness as upy

SCRIPT = """
import gc, json
from configurator_fw import admin
from configurator_fw.api import DeviceApi
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from client_fw import bootstrap, provision
from client_fw.storage import Storage
from shared.board import Board

b = Board()
admin.setup('cfgbox-leak', 'cfgbox', 'passphrase 1',
            passphrase='test-fleet pass phrase 9!', auto_unseal=True, board=b)
bootstrap.write(b, admin.enroll('leak-1', board=b))
store = Store(b, Vault.auto(b))
pem = '-----BEGIN CERTIFICATE-----\\n' + ('A' * 64 + '\\n') * 40 + '-----END CERTIFICATE-----\\n'
store.set_defaults({'mqtt': {'host': 'm', 'ca': pem}, 'ntp': 'pool.ntp.org'})
api = DeviceApi(store)
clock = [1795219200]

{wire}
provision.post = wire
boot = bootstrap.read(b)
storage = Storage(b, boot['dev'], boot['dk'])

def one(i):
    clock[0] += 30  # a new TOTP step each time
    if i % 2:
        store.set_overrides('leak-1', {'name': 'n%d' % i})
    return provision.exchange(boot, storage, storage.version(), '127.0.4.1', '127.0.4.2',
                              clock[0], lambda v: {'ver': v}, lambda s: None)[0]

seen = {'ok': 0, 'unchanged': 0}  # a fixed-size tally: a growing list would be a leak itself
for i in range(4):
    seen[one(i)] += 1
gc.collect(); first = gc.mem_free()
for i in range(4, 44):
    seen[one(i)] += 1
gc.collect(); last = gc.mem_free()
print('STATUSES', ','.join(sorted(seen)), seen['ok'], seen['unchanged'])
print('HEAP', first, last)
"""


def test_heap_after_many_exchanges_is_heap_after_the_first(tmp_path):
    # one board running both the box's and the client's code, frozen (as the box must be)
    r = upy.device_run(SCRIPT.replace("{wire}", upy.WIRE), tmp_path, "box",
                       bundle="configurator", frozen=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    statuses = re.search(r"^STATUSES (\S+) (\d+) (\d+)$", out, re.M)
    assert statuses and statuses.groups() == ("ok,unchanged", "23", "21"), out
    first, last = map(int, re.search(r"^HEAP (\d+) (\d+)$", out, re.M).groups())
    # 40 more exchanges (20 of them moving a 3 KB config) keep nothing; a few bytes of slack for
    # the conservative GC (a leak of even one small object per exchange would exceed it)
    assert first - last <= 256, (first, last)
