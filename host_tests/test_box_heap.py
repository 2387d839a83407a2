# The box's heap after a long day of use: what a request keeps (an enrolled id, an audit
# entry, a lockout count for a stranger's id) must not end up spread over the heap so that an
# answer needing a few KB in one block finds none although half the heap is free (found by
# schemathesis at its full count: out-of-memory 503s on a box with 40 KB free). The box runs
# its frozen firmware on the 32-bit harness, with the heap in areas as the port grows it.
import http.client
import json
import os
import time

import pytest
import upy_harness as upy
from adminhttp import AdminClient
from fleet import BOX_ID, PASSPHRASE, sealed_fleet

pytestmark = pytest.mark.skipif(not upy.MICROPYTHON.exists(),
                                reason="MicroPython not built: run `make test`")

CFG = {"wifi": [{"ssid": "plant-floor", "password": "wifi secret 2431"}],
       "mqtt": {"host": "mqtt.local", "user": "fleet", "password": "mqtt secret 9913"}}


def hello(port, dev):
    c = http.client.HTTPConnection("127.0.4.1", port, timeout=120)  # a hang guard
    c.request("POST", "/api/v2/hello",
              json.dumps({"v": 2, "dev": dev, "cn": os.urandom(16).hex()}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def test_a_box_busy_all_day_still_takes_a_4k_defaults_body_and_pages_its_fleet(tmp_path):
    # 300 rounds of an operator's and a network's day: enrol (with overrides), a stranger's
    # hello, the fleet page, the audit, a merged config, revocations; every tenth round a new
    # 3.8 KB defaults. Before the box collected its garbage early (box.GC_EVERY), 29 of the 30
    # defaults and 35 of the pages were 503 "memory busy", the heap 40 KB free in pieces.
    f = sealed_fleet(tmp_path, CFG)
    answers = {}
    try:
        a = AdminClient(f.port)
        assert a.login(PASSPHRASE, time=int(time.time()))[0] == 200

        def note(what, status):
            answers.setdefault(what, {}).setdefault(status, 0)
            answers[what][status] += 1

        for i in range(300):
            dev = "day-%04d-%s" % (i, "x" * 20)
            note("enroll", a.post("enroll", {"dev": dev})[0])
            note("overrides", a.post("overrides", {"dev": dev, "config": {
                "app": {"k%d" % j: "v" * 40 for j in range(i % 20)}}})[0])
            note("hello", hello(f.port, "stranger-%05d-%s" % (i, "y" * 12)))
            note("fleet", a.get("fleet?per=%d&page=1&q=day" % (1 + i % 100))[0])
            note("audit", a.get("audit")[0])
            note("config", a.get("config?dev=" + dev)[0])
            if i % 3 == 0:
                note("revoke", a.post("revoke", {"dev": dev})[0])
            if i % 10 == 9:
                big = dict(CFG, app={"key%03d" % j: "%02d" % (i // 10) * 30 for j in range(50)})
                note("defaults", a.post("defaults", {"config": big})[0])
        log = f.box_log_text()
        assert all(list(s) == [200] for s in answers.values()), (answers, log[-3000:])
        assert answers["defaults"][200] == 30 and answers["fleet"][200] == 300
        assert "out of memory" not in log and "MemoryError" not in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        # the box still does its job: the device enrolled at set-up gets the last defaults
        status, cfg = f.check("sensor-1", attempts=3)
        assert status == "ok", f.box_log_text()[-3000:]
        assert cfg["app"]["key000"] == "29" * 30 and cfg["mqtt"] == CFG["mqtt"]
    finally:
        f.stop_box()


PROVISION_ALL = """
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from shared.board import Board
import gc
b = Board()
s = Store(b, Vault.auto(b))
for i in range(999):
    dev = 'sensor-%04d' % i
    slot, rec = s._find(dev)
    ver = s.version(dev, rec)
    # what a device's exchange persists: its step and address (api auth), then its ack's
    # version, time, state and status as it sends them (api ack, client_fw.provision)
    rec['ctr'], rec['seen'] = {step} - 1 - i % 7, {now} - 3 * i
    rec['ip'] = (192 << 24) | (168 << 16) | (4 << 8) | (2 + i % 200)
    rec['ack'], rec['state'] = ver, 'provisioned'
    s.save_status(dev, rec, {{'fw': '1.1.0', 'heap': 93000 - i, 'rssi': -40 - i % 50,
                              'ver': ver, 'err': None}})
    if i % 16 == 0:
        gc.collect()
print('DONE')
"""


def test_a_box_whose_thousand_devices_all_provisioned_boots_at_the_board_heap_and_serves(
        thousand):
    # The state make bench left when a box failed to boot (a MemoryError for one free 4 KB
    # block while its id index grew by appends between the group reads; store_devices.load now
    # allocates it once): every record and status entry full. This test guards that state; it
    # does not reproduce that failure, which it does not meet on the code before the fix either.
    import bench

    f = thousand
    now = f.world.now()
    assert "DONE" in f.boxrun(PROVISION_ALL.format(step=now // 30, now=now))
    _from = len(f.box_log_text())
    for _ in range(2):  # twice: a boot must not depend on what the one before left
        f.start_box()
        try:
            f.world.advance(30)
            for dev in ("sensor-0000", "sensor-0998", "probe"):
                ver, cfg = bench.HttpDevice(f.port, f.boots[dev], BOX_ID).exchange(
                    f.world.now(), have=0)
                assert json.loads(cfg)["mqtt"]["host"] == "m.example.net", (dev, cfg)
            adm = AdminClient(f.port)
            assert adm.login(PASSPHRASE, f.world.now())[0] == 200
            s, out, _ = adm.get("fleet?state=provisioned&per=1")
            assert s == 200 and out["counts"]["provisioned"] >= 999, out
        finally:
            f.stop_box()
    log = f.box_log_text()[_from:]
    assert "MemoryError" not in log and "Traceback" not in log and \
        "out of memory" not in log, log[-3000:]


def test_a_thousand_device_box_serves_waves_of_ten_stations_with_no_request_out_of_memory(
        thousand):
    # make bench's 1,000 devices in waves of 10, cut to 40 waves: each device of a wave from its
    # own station, all at once, as ten devices that joined the AP together. With 4 config streams
    # at once (app.STREAMS before) this failed in 4 of 6 runs, and its first cut of 20 waves in
    # 2 of 5: answers cut off, hello/auth/ack refused for memory. A config stream
    # refused before its head (503 busy, asked again) is the designed answer to a full heap
    # and is allowed; a request failed by memory is not.
    import bench_fleet

    f = thousand
    names = ["sensor-%04d" % i for i in range(400)]
    stored, of, failed, _, busy = bench_fleet.fleet_in_waves(f, 10, names, tries=3)
    log = bench_fleet._log(f)
    print("waves: %d of %d stored; %d streams 503 before their head" % (stored, of, busy))
    assert failed == 0, [ln for ln in log.splitlines()
                         if "emory" in ln and "before its head" not in ln][:10]
    assert "Traceback" not in log, log[-3000:]
    assert stored == of == len(names)
