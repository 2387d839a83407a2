# The admin page in a real browser (Debian's chromium and chromium-driver, driven by selenium)
# against the real box under the 32-bit MicroPython harness. `make setup` installs the browser;
# without it these tests fail, they are never skipped. Screenshots: build/screenshots/.
import json
import shutil
import time
from pathlib import Path

import pytest
import qrcode
import upy_harness as upy
from fleet import PASSPHRASE, Fleet, sealed_fleet
from qrcode.util import MODE_8BIT_BYTE, QRData
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"
CFG = {"wifi": [{"ssid": "plant-floor", "password": "wifi secret 2431"}],
       "mqtt": {"host": "mqtt.local", "user": "fleet", "password": "mqtt secret 9913"}}


def _browser(tmp_path):
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromium-driver are not installed: run `make setup` (it "
                    "installs Debian's packages)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
              "--user-data-dir=%s" % (tmp_path / "chrome")):
        opts.add_argument(a)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    b.set_page_load_timeout(30)
    return b


@pytest.fixture
def page(tmp_path):
    f = sealed_fleet(tmp_path, CFG)
    b = _browser(tmp_path)
    b.get("http://127.0.4.1:%d/admin" % f.port)
    yield f, b
    b.quit()
    f.stop_box()


def wait(b, cond, timeout=120):  # a hang guard only
    return WebDriverWait(b, timeout, poll_frequency=0.1).until(lambda d: cond(d))


def text(b, id_):
    return b.find_element(By.ID, id_).text


def shot(b, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    b.save_screenshot(str(SHOTS / (name + ".png")))


def login(b, pw):
    box = b.find_element(By.ID, "login-pass")
    box.clear()
    box.send_keys(pw)
    b.find_element(By.ID, "login-btn").click()


def row_state(b, dev):
    # read in one script: the table is rebuilt every 3 s, an element found before may be gone
    return b.execute_script("const r = document.querySelector(\"#devices tr[data-dev='\" + "
                            "arguments[0] + \"']\"); return r ? r.dataset.state : null", dev)


def test_operator_session_unlock_enrol_config_provision_revoke(page):
    f, b = page
    wait(b, lambda d: "sealed" in text(d, "login-state"))
    assert b.find_element(By.ID, "main").get_attribute("hidden") is not None
    # wrong passphrase
    login(b, "not the right passphrase")
    wait(b, lambda d: "wrong passphrase" in text(d, "login-msg"))
    shot(b, "01-login-wrong-passphrase")
    # unlock: the box's clock comes from the browser
    login(b, PASSPHRASE)
    wait(b, lambda d: d.find_element(By.ID, "main").is_displayed())
    wait(b, lambda d: "box clock 20" in text(d, "clock"))
    wait(b, lambda d: row_state(d, "sensor-1") == "enrolled")
    assert "1 devices: 1 enrolled" in text(b, "counts")
    assert "room for" in text(b, "flash")
    shot(b, "02-unlocked-fleet")
    # enrol: bootstrap shown once, the otpauth QR drawn in the page
    b.find_element(By.ID, "enroll-id").send_keys("sensor-2")
    b.find_element(By.ID, "enroll-btn").click()
    wait(b, lambda d: d.find_element(By.ID, "enroll-out").is_displayed())
    boot = json.loads(text(b, "boot-json"))
    uri = text(b, "otp-uri")
    assert boot["dev"] == "sensor-2" and uri.startswith("otpauth://totp/")
    assert b.find_element(By.CSS_SELECTOR, "#qr svg path").get_attribute("d")
    shot(b, "03-enrolled-qr")
    # the QR in the page is the one a reference encoder makes (python qrcode, same mask)
    size = int(b.find_element(By.CSS_SELECTOR, "#qr svg").get_attribute("data-size"))
    page_matrix = b.execute_script("return qrMatrix(arguments[0])", uri)
    refs = [_reference_qr(uri, mask) for mask in range(8)]
    assert len(page_matrix) == size and page_matrix in refs
    # config: a validation error names the key; secrets are masked and kept
    cfg_text = b.find_element(By.ID, "cfg-text")
    wait(b, lambda d: "********" in cfg_text.get_attribute("value"))
    assert "mqtt secret 9913" not in cfg_text.get_attribute("value")
    shown = json.loads(cfg_text.get_attribute("value"))
    shown["mqtt"] = {"port": 1883}
    _set_text(b, cfg_text, json.dumps(shown))
    b.find_element(By.ID, "cfg-save").click()
    wait(b, lambda d: "mqtt.host" in text(d, "cfg-msg"))
    assert "bad" in b.find_element(By.ID, "cfg-msg").get_attribute("class")
    shot(b, "04-config-error")
    shown = json.loads(json.dumps(CFG))
    shown["wifi"][0]["password"] = "********"  # kept as it is
    shown["mqtt"]["password"] = "********"
    shown["name"] = "edited in the browser"
    _set_text(b, cfg_text, json.dumps(shown))
    b.find_element(By.ID, "cfg-save").click()
    wait(b, lambda d: "Saved" in text(d, "cfg-msg"))
    shot(b, "05-config-saved")
    # a device provisions while the page is open: the page shows it
    f.write_bootstrap("sensor-2", boot)
    f.boots["sensor-2"] = boot
    status, cfg = f.check("sensor-2")
    assert status == "ok" and cfg == dict(CFG, name="edited in the browser")
    # what sensor-2 receives, merged and masked, with its size against the cap
    target = b.find_element(By.ID, "cfg-target")
    target.clear()
    target.send_keys("sensor-2")
    b.find_element(By.ID, "cfg-merged").click()
    wait(b, lambda d: "sensor-2 receives version" in text(d, "cfg-msg"))
    merged = json.loads(b.find_element(By.ID, "cfg-merged-text").get_attribute("textContent"))
    assert merged["name"] == "edited in the browser" and merged["mqtt"]["password"] == "********"
    assert "of 16384 bytes" in text(b, "cfg-msg")
    target.clear()
    wait(b, lambda d: row_state(d, "sensor-2") == "provisioned")
    row = wait(b, lambda d: d.execute_script(
        "const r = document.querySelector(\"#devices tr[data-dev='sensor-2']\");"
        "return r && r.textContent.includes('dBm') ? r.innerText : null"))
    assert "KB" in row and ("just now" in row or "s ago" in row), row
    shot(b, "06-device-provisioned")
    # revoke
    b.execute_script("window.confirm = () => true")
    b.execute_script("document.querySelector(\"#devices tr[data-dev='sensor-2'] "
                     "button.revoke\").click()")
    wait(b, lambda d: row_state(d, "sensor-2") == "revoked")
    # answered like an id the box never knew: its hello is MACed with a decoy key
    assert f.check("sensor-2")[0] == "box not authentic"
    # the audit log, newest first
    wait(b, lambda d: "revoked" in text(d, "audit"))
    events = [li.find_element(By.TAG_NAME, "b").text for li in
              b.find_elements(By.CSS_SELECTOR, "#audit li")]
    assert events[0] == "revoked" and "provisioned" in events and "enrolled" in events
    assert "unlocked" in events and "config-changed" in events and "clock-set" in events
    shot(b, "07-revoked-audit")
    # CSRF: a change without the token is refused, and changes nothing
    status = b.execute_script(
        "const r = await fetch('/admin/api/lock', {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/json'}, body: '{}'}); return r.status;")
    assert status == 403
    assert f.check("sensor-1")[0] == "ok"  # still unlocked


def _set_text(b, el, value):
    b.execute_script("arguments[0].value = arguments[1]", el, value)


def _reference_qr(text, mask):
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0,
                      mask_pattern=mask)
    q.add_data(QRData(text.encode(), mode=MODE_8BIT_BYTE), optimize=0)
    q.make(fit=True)
    return [[bool(c) for c in row] for row in q.get_matrix()]


@pytest.mark.parametrize("mask", range(8))
def test_the_page_qr_encoder_matches_a_reference_for_every_mask(page, mask):
    _, b = page
    wait(b, lambda d: d.execute_script("return typeof qrMatrix") == "function")
    for uri in ("otpauth://totp/cfgbox-7c2a:sensor-1?secret=JBSWY3DPEHPK3PXP&issuer=cfgbox-7c2a",
                "otpauth://totp/box:" + "d" * 32 + "?secret=" + "A" * 32 +
                "&issuer=box&algorithm=SHA1&digits=6&period=30", "x"):
        assert b.execute_script("return qrMatrix(arguments[0], arguments[1])", uri, mask) == \
            _reference_qr(uri, mask)


def test_session_expiry_and_lockout_in_the_browser(page):
    f, b = page
    login(b, PASSPHRASE)
    wait(b, lambda d: d.find_element(By.ID, "main").is_displayed())
    f.world.advance(11 * 60)  # ten minutes without a request, on the box's own ticks
    wait(b, lambda d: d.find_element(By.ID, "login").is_displayed())
    assert "session ended" in text(b, "login-msg")
    wait(b, lambda d: text(d, "login-state") == "unlocked: log in")  # the box stays open
    shot(b, "08-session-expired")
    for _ in range(5):
        login(b, "wrong passphrase try")
        time.sleep(0.05)
        wait(b, lambda d: d.find_element(By.ID, "login-btn").is_enabled())
    login(b, PASSPHRASE)
    wait(b, lambda d: "too many wrong passphrases" in text(d, "login-msg"))
    shot(b, "09-locked-out")


def test_a_browser_clock_far_ahead_of_the_box_is_asked_about_before_the_unlock(tmp_path):
    """The box last knew a time over 400 days before this computer's clock: the page asks
    before it unlocks with it. Declined, the box stays sealed; accepted, it unlocks and takes
    the browser's time."""
    from adminhttp import AdminClient
    from selenium.webdriver.support import expected_conditions

    f = Fleet(tmp_path, set_time=False, auto_unseal=False)
    f.start_box(cold=True)
    then = int(time.time()) - 401 * 86400  # the box's last unlock, as far as it knows
    assert AdminClient(f.port).login(PASSPHRASE, then)[0] == 200
    f.stop_box()
    f.start_box(cold=True)  # powered on again 401 days later: sealed, no trusted clock
    b = _browser(tmp_path)
    try:
        b.get("http://127.0.4.1:%d/admin" % f.port)
        wait(b, lambda d: "sealed" in text(d, "login-state"))
        login(b, PASSPHRASE)
        WebDriverWait(b, 30).until(expected_conditions.alert_is_present())
        question = b.switch_to.alert.text
        assert "days after the last time the box knew" in question, question
        b.switch_to.alert.dismiss()
        wait(b, lambda d: "days after the last time the box knew" in text(d, "login-msg"))
        assert AdminClient(f.port).get("session")[1]["sealed"] is True
        login(b, PASSPHRASE)
        WebDriverWait(b, 30).until(expected_conditions.alert_is_present())
        b.switch_to.alert.accept()
        wait(b, lambda d: d.find_element(By.ID, "main").is_displayed())
        wait(b, lambda d: "box clock 20" in text(d, "clock"))
        import re

        set_to = [int(t) for t in re.findall(r"clock set to (\d+)", f.box_log_text())]
        assert set_to[0] == then and set_to[-1] >= then + 401 * 86400, set_to
    finally:
        b.quit()
        f.stop_box()


pytestmark = pytest.mark.skipif(not upy.MICROPYTHON.exists(),
                                reason="MicroPython not built: run `make test`")


FAIL_SOME = """
from configurator_fw.store import Store
from configurator_fw.vault import Vault
from shared.board import Board
b = Board()
s = Store(b, Vault.auto(b))
for i, dev in enumerate({devs!r}):
    slot, rec = s._find(dev)
    rec['seen'] = {now} - 600 + 60 * i
    rec['ip'] = (192 << 24) | (168 << 16) | (4 << 8) | (10 + i)
    # what the ack of a device reporting an error persists (api.DeviceApi.ack)
    s.save_status(dev, rec, {{'fw': '1.1.0', 'err': 'wifi: AP not found', 'heap': 90000}})
print('DONE')
"""
HEAP_FLOOR = 32 * 1024  # the least free heap the box keeps while it serves the page


def _fetch(b, query):
    # the box takes two connections at once from a station: one refused while the page polls
    # is asked again
    return b.execute_async_script(
        "const done = arguments[arguments.length - 1], q = arguments[0];"
        "const go = (n) => fetch('/admin/api/fleet?' + q, {credentials: 'same-origin'})"
        ".then(r => r.json()).then(done, e => n ? setTimeout(() => go(n - 1), 200) : done(null));"
        "go(20);", query)


def _rows(b):
    return b.execute_script("return Array.from(document.querySelectorAll('#devices tbody tr'))"
                            ".map(r => [r.dataset.dev, r.innerText])")


def test_the_page_serves_a_thousand_devices_in_pages_failed_first_within_a_heap_floor(
        tmp_path, thousand):
    """Item 4 of "a thousand devices": 1,000 enrolled devices, five of which reported an error;
    the page shows exact counts, pages of 50, the failed ones first on request, a filter, a
    search, IP and last error columns, and the box's free heap stays above HEAP_FLOOR."""
    from selenium.webdriver.support.ui import Select

    f = thousand
    failed = ["sensor-%04d" % i for i in (7, 123, 480, 777, 998)]
    assert "DONE" in f.boxrun(FAIL_SOME.format(devs=failed, now=f.world.now()))
    f.start_box()
    b = _browser(tmp_path)
    try:
        b.set_script_timeout(30)
        b.get("http://127.0.4.1:%d/admin" % f.port)
        wait(b, lambda d: d.find_element(By.ID, "login-pass").is_displayed())
        login(b, PASSPHRASE)
        wait(b, lambda d: d.find_element(By.ID, "main").is_displayed())
        wait(b, lambda d: text(d, "counts").startswith("1000 devices"), 60)
        assert "5 failed" in text(b, "counts")
        wait(b, lambda d: len(_rows(d)) == 50, 60)
        assert _rows(b)[0][0] == "sensor-0000" and "page 1 of 20" in text(b, "f-page")
        shot(b, "10-thousand-devices")
        Select(b.find_element(By.ID, "f-sort")).select_by_value("failed")
        wait(b, lambda d: [r[0] for r in _rows(d)[:5]] == failed, 60)
        first = _rows(b)[0][1]
        assert "wifi: AP not found" in first and "192.168.4.10" in first, first
        assert "wifi" not in _rows(b)[5][1]
        shot(b, "11-failed-first")
        Select(b.find_element(By.ID, "f-state")).select_by_value("failed")
        wait(b, lambda d: [r[0] for r in _rows(d)] == failed, 60)
        assert "page 1 of 1 (5 shown of 1000)" in text(b, "f-page")
        Select(b.find_element(By.ID, "f-state")).select_by_value("all")
        b.find_element(By.ID, "f-q").send_keys("sensor-050")
        wait(b, lambda d: [r[0] for r in _rows(d)] == ["sensor-%04d" % i for i in
                                                       range(500, 510)], 60)
        # the box's heap while it serves: pages of every kind, at 1,000 devices
        lows = []
        for query in ("page=0", "sort=failed", "sort=seen&per=100", "sort=ver&page=9&per=100",
                      "state=never&per=100", "q=sensor-09&per=100", "state=locked"):
            out = _fetch(b, query)
            assert sum(out["counts"].values()) == 1000 and out["flags"]["failed"] == 5, out
            lows.append(out["mem"]["low"])
        assert _fetch(b, "sort=seen&per=5")["devices"][0]["dev"] == failed[-1]  # last seen
        print("heap low while serving the page at 1,000 devices:", lows)
        assert min(lows) >= HEAP_FLOOR, lows
        log = f.box_log_text()
        assert "MemoryError" not in log and "Traceback" not in log, log[-2000:]
    finally:
        b.quit()
        f.stop_box()
