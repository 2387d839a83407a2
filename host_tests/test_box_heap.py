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
from fleet import PASSPHRASE, sealed_fleet

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
