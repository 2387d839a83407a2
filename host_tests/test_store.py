# The box's store under CPython: the defaults/overrides merge, config versioning under any order of
# changes, power loss in the middle of a write, and the per-device footprint.
import copy
import json
import shutil
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from configurator_fw.store import StoreError, merge
from hostbox import T0, FsBoard, new_store, reopen, snapshot
from shared import protocol

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=3)
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text("abc", max_size=2), c,
                                                                 max_size=3), max_leaves=12)
json_objects = st.dictionaries(st.text("abcd", max_size=2), json_values, max_size=4)


@given(json_values, json_values)
def test_merge_leaves_inputs_alone_and_is_idempotent(target, patch):
    t0, p0 = copy.deepcopy(target), copy.deepcopy(patch)
    once = merge(target, patch)
    assert (target, patch) == (t0, p0)
    assert merge(once, patch) == once  # RFC 7386 s.1: applying a patch twice changes nothing more


@given(json_objects, json_objects)
def test_merge_key_by_key(defaults, overrides):
    out = merge(defaults, overrides)
    for k, v in overrides.items():
        if v is None:
            assert k not in out
        elif not isinstance(v, dict):
            assert out[k] == v
    for k, v in defaults.items():
        if k not in overrides:
            assert out[k] == v
    assert merge(defaults, {}) == defaults


DEVS = ("dev-a", "dev-b", "dev-c")


class Versions(RuleBasedStateMachine):
    """Any sequence of operator changes, with power cuts at any write: a device's version moves on
    exactly when its config may have changed, one version always means one content, and what the
    box serves is the merge of what the operator last set successfully."""

    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.store, _ = new_store(self.dir, DEVS)
        self.defaults = {}
        self.over = {d: {} for d in DEVS}
        self.ver = {d: self.store.version(d) for d in DEVS}
        self.seen = {}

    def teardown(self):
        shutil.rmtree(self.dir)

    def _moved(self, changed):
        for d in DEVS:
            v = self.store.version(d)
            assert v > self.ver[d] if d in changed else v == self.ver[d], (d, v, self.ver[d])
            self.ver[d] = v

    @rule(cfg=json_objects)
    def set_defaults(self, cfg):
        self.store.set_defaults(cfg)
        self.defaults = cfg
        self._moved(DEVS)

    @rule(dev=st.sampled_from(DEVS), cfg=json_objects)
    def set_overrides(self, dev, cfg):
        self.store.set_overrides(dev, cfg)
        self.over[dev] = cfg
        self._moved((dev,))

    @rule(dev=st.sampled_from(DEVS + ("",)), cfg=json_objects, cut=st.integers(0, 2))
    def power_cut(self, dev, cfg, cut):
        """The n-th file write of a change dies before its rename; the box then reboots."""
        board = self.store.b
        writes = []

        def dying_write(name, *parts):
            if len(writes) == cut:
                data = []
                for p in parts:  # a streamed part writes through a callback
                    p(data.append) if callable(p) else data.append(p)
                with open(board.path(name + ".tmp"), "wb") as f:
                    f.write(b"".join(bytes(d) for d in data)[:7])  # a torn temp file
                raise OSError(5, "power lost")
            writes.append(name)
            FsBoard.write_atomic(board, name, *parts)

        board.write_atomic = dying_write
        try:
            if dev:
                self.store.set_overrides(dev, cfg)
            else:
                self.store.set_defaults(cfg)
        except OSError:
            pass
        del board.write_atomic
        self.store = reopen(self.store)
        self.store.reconcile()  # as the box does at boot
        # the change took effect if its content file was written (the commit point), even when
        # the power failed on a later write
        if any(w.startswith("store/o/" if dev else "store/defaults") for w in writes):
            if dev:
                self.over[dev] = cfg
            else:
                self.defaults = cfg
            self._moved((dev,) if dev else DEVS)
        else:
            self._moved(())

    @invariant()
    def serves_the_merge_under_one_version(self):
        for d in DEVS:
            ver, cfg = self.store.config(d)
            assert ver == self.store.version(d) == self.ver[d]
            assert json.loads(cfg) == merge(self.defaults, self.over[d])
            assert self.seen.setdefault((d, ver), cfg) == cfg


TestVersions = Versions.TestCase
TestVersions.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)


def test_oversize_config_refused_with_a_clear_error_and_nothing_changes(tmp_path):
    store, _ = new_store(tmp_path, ["big"])
    store.set_overrides("big", {"name": "ok"})
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match=r"config of big would be \d+ bytes; the cap is 16384"):
        store.set_overrides("big", {"ca": "x" * protocol.MAX_CONFIG})
    with pytest.raises(StoreError, match="cap is 16384"):
        store.set_defaults({"ca": "x" * protocol.MAX_CONFIG})
    with pytest.raises(StoreError, match="enrol it first"):
        store.set_overrides("nobody", {})
    with pytest.raises(StoreError, match="JSON object"):
        store.set_defaults(["not", "an", "object"])
    assert snapshot(tmp_path) == before


def test_a_16k_config_is_accepted(tmp_path):
    store, _ = new_store(tmp_path, ["big"])
    pad = protocol.MAX_CONFIG - len(json.dumps({"ca": ""}))
    store.set_overrides("big", {"ca": "x" * pad})
    assert len(store.config("big")[1]) == protocol.MAX_CONFIG


def test_devices_share_fixed_size_group_files_and_secrets_are_sealed(tmp_path):
    from configurator_fw.store_devices import GROUP, RECORD
    from configurator_fw.store_secrets import ENTRY

    store, boot = new_store(tmp_path, ["d%03d" % i for i in range(200)])
    for kind, size in (("d", RECORD), ("t", ENTRY)):
        files = sorted((tmp_path / "store" / kind).iterdir())
        assert len(files) == -(-200 // GROUP)  # a file per 16 devices
        assert {p.stat().st_size for p in files} == {GROUP * size}  # each at its full size
    assert sorted(store.device_ids()) == sorted(boot)
    rec = store.device("d007")
    assert set(rec) == {"state", "seen", "ack", "ctr", "orev", "ahead", "ip", "eh", "slot"}
    assert rec["slot"] == 7  # slots are given in enrolment order
    secret = store.totp_secret("d007")
    assert secret == boot["d007"]["totp"]
    everything = b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert secret.hex().encode() not in everything and secret not in everything


def test_a_power_cut_between_the_overrides_and_the_state_is_repaired_at_boot(tmp_path):
    store, _ = new_store(tmp_path, ["a"])
    board = store.b
    writes = []

    def cut_after_bucket(name, *parts):
        FsBoard.write_atomic(board, name, *parts)
        writes.append(name)
        if name.startswith("store/o/"):
            raise OSError(5, "power lost")  # before the state names the new revision

    board.write_atomic = cut_after_bucket
    with pytest.raises(OSError):
        store.set_overrides("a", {"name": "new"})
    del board.write_atomic
    box = reopen(store)
    assert box.device("a")["orev"] == 0  # the cached revision lags
    assert box.reconcile() == 1
    assert box.device("a")["orev"] == box.version("a") == box.config("a")[0]
    assert json.loads(box.config("a")[1]) == {"name": "new"}


def test_enrol_refuses_bad_and_duplicate_ids(tmp_path):
    store, _ = new_store(tmp_path, ["one"])
    for bad in ("", "../x", "a b", "x" * 33, "naïve"):
        with pytest.raises(StoreError, match="device id"):
            store.enroll(bad)
    with pytest.raises(StoreError, match="already enrolled"):
        store.enroll("one")


@settings(max_examples=300, deadline=None)
@given(json_objects, json_objects)
def test_composed_record_streams_equal_the_reference_merge(defaults, overrides):
    """The box's on-the-fly merge of record streams (configurator_fw/compose.py) against the
    whole-object RFC 7386 merge whose appendix vectors both interpreters run."""
    from test_vec_stream import merged

    assert merged(defaults, overrides) == merge(defaults, overrides)


@given(json_objects)
def test_the_operators_size_check_measures_what_would_be_sent(cfg):
    """Store._check measures a config value by value (store.json_sizes) rather than encoding it:
    its figures must be exactly the JSON text's and the record stream's lengths."""
    from configurator_fw.compose import encode, flatten
    from configurator_fw.store import json_sizes

    assert json_sizes(cfg, 0) == (len(json.dumps(cfg)), len(encode(flatten(cfg))))


def test_large_overrides_get_a_file_of_their_own_and_small_ones_stay_in_the_bucket(tmp_path):
    store, _ = new_store(tmp_path, ["small", "large"])
    store.set_overrides("small", {"name": "s"})
    store.set_overrides("large", {"app": {"blob": "x" * 3000}})
    files = {p.name for p in (tmp_path / "store" / "o").iterdir()}
    assert any(f.startswith("1.") and f.endswith(".bin") for f in files)  # slot 1's own
    assert not any(f.startswith("0.") for f in files)
    assert json.loads(reopen(store).config("large")[1])["app"]["blob"] == "x" * 3000
    assert json.loads(reopen(store).config("small")[1]) == {"name": "s"}
    store.set_overrides("large", {"name": "now small"})  # the old file goes with the change
    assert not any(p.name.startswith("1.") for p in (tmp_path / "store" / "o").iterdir())
    assert json.loads(reopen(store).config("small")[1]) == {"name": "s"}  # its neighbour kept
    assert json.loads(reopen(store).config("large")[1]) == {"name": "now small"}


# -- a tamper-evident store (PROTOCOL.md s.5.1) and a vault that never loses its key


def _edit_entry(root, slot, change):
    from configurator_fw.store_devices import GROUP, RECORD

    path = root / "store" / "d" / ("%02d.bin" % (slot // GROUP))
    raw = bytearray(path.read_bytes())
    rec = raw[slot % GROUP * RECORD:(slot % GROUP + 1) * RECORD]
    change(rec)
    raw[slot % GROUP * RECORD:(slot % GROUP + 1) * RECORD] = rec
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("change", [
    lambda rec: rec.__setitem__(slice(34, 38), (99999999).to_bytes(4, "big")),  # step counter
    lambda rec: rec.__setitem__(slice(46, 50), (7).to_bytes(4, "big")),  # overrides revision
    lambda rec: rec.__setitem__(0, 2),  # "enrolled" made "provisioned"
    lambda rec: rec.__setitem__(79, rec[79] ^ 1),  # the MAC itself
])
def test_an_edited_device_record_fails_its_mac_and_touches_no_other_device(tmp_path, change):
    from configurator_fw.api import DeviceApi
    from configurator_fw.store import Tampered
    from hostbox import HELLO, T0, HostDevice

    devs = ["d%03d" % i for i in range(200)]
    store, boot = new_store(tmp_path, devs)
    victim = devs[0]
    neighbour = devs[1]  # the same group file
    _edit_entry(tmp_path, store.device(victim)["slot"], change)
    store = reopen(store)
    with pytest.raises(Tampered):
        store.device(victim)
    assert dict(store.devices())[victim]["state"] == "tampered"
    assert store.device(neighbour)["state"] == "enrolled"
    api = DeviceApi(store)
    lines = []
    api.log = lines.append
    assert HostDevice(api, boot[neighbour]).exchange(T0)[0] == 1  # the neighbour is served
    v = HostDevice(api, boot[victim])
    with pytest.raises(AssertionError, match="box not authentic"):
        v.hello(T0)  # answered like an unknown id: no traceback, no key of its own
    assert api.handle(HELLO, {"v": 2, "dev": victim, "cn": "00" * 16}, "s", T0)[0] == 200


def test_an_edited_box_json_or_defaults_header_is_refused_with_a_clear_error(tmp_path):
    from configurator_fw.api import DeviceApi
    from configurator_fw.store import Tampered
    from hostbox import HELLO, T0

    store, _ = new_store(tmp_path, ["d1"])
    store.set_defaults({"a": 1})
    path = tmp_path / "store" / "defaults.bin"
    raw = bytearray(path.read_bytes())
    raw[3] += 1  # the unverified v1 header would have hidden an update; v2 binds it
    path.write_bytes(bytes(raw))
    lines = []
    api = DeviceApi(reopen(store), log=lines.append)
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": "d1", "cn": "00" * 16}, "s", T0)
    assert (s, out["error"]) == (503, "unavailable")
    assert any("defaults.bin fails its tag" in x for x in lines), lines
    meta = tmp_path / "store" / "box.json"
    text = meta.read_text()
    assert '"max_clients": 8' in text  # the default: stock firmware's DHCP pool
    meta.write_text(text.replace('"max_clients": 8', '"max_clients": 9'))
    with pytest.raises(Tampered, match="box.json fails its MAC"):
        reopen(store)


def test_move_on_reissues_above_every_version_a_device_holds(tmp_path):
    store, _ = new_store(tmp_path, ["d1", "d2"])
    store.set_defaults({"a": 1})
    rec = store.device("d1")
    rec["ahead"] = 9  # d1 reported version 9 (the box was restored from an older backup)
    store.save_device("d1", rec)
    rec = store.device("d2")
    rec["ack"] = 5
    store.save_device("d2", rec)
    assert store.move_on() == 10
    assert store.version("d1") == 10 and store.defaults() == {"a": 1}
    assert reopen(store).verified_defaults_rev() == 10


class _Nvs:
    def __init__(self, error):
        self.error = error
        self.written = []

    def get_blob(self, key, buf):
        raise OSError(self.error)

    def set_blob(self, key, value):
        self.written.append(key)

    def commit(self):
        pass


@pytest.mark.parametrize("errno,none", [(-0x1102, True), (-0x1101, False), (5, False),
                                        (-0x1107, False)])
def test_the_auto_unseal_key_is_absent_only_when_nvs_says_so(tmp_path, errno, none):
    """Only ESP_ERR_NVS_NOT_FOUND means "auto-unseal is off" (the box stays sealed). Any other
    error (NVS not initialised, an I/O error) raises and writes nothing."""
    from configurator_fw.vault import VaultError, auto_key

    nvs = _Nvs(errno)

    class B(FsBoard):
        def nvs(self, ns):
            return nvs

    if none:
        assert auto_key(B(tmp_path)) is None
    else:
        with pytest.raises(VaultError, match="NVS cannot be read"):
            auto_key(B(tmp_path))
    assert nvs.written == []


class _DictNvs:
    """esp32.NVS as ports/esp32/esp32_nvs.c has it: a missing key raises ESP_ERR_NVS_NOT_FOUND,
    a buffer too small for the blob ESP_ERR_NVS_INVALID_LENGTH; get_blob gives the length."""

    def __init__(self, fail_erase=None):
        self.d = {}
        self.fail_erase = fail_erase
        self.commits = 0

    def get_blob(self, key, buf):
        if key not in self.d:
            raise OSError(-0x1102)
        v = self.d[key]
        if len(buf) < len(v):
            raise OSError(-0x1107)
        buf[:len(v)] = v
        return len(v)

    def set_blob(self, key, value):
        self.d[key] = bytes(value)

    def erase_key(self, key):
        if self.fail_erase is not None:
            raise OSError(self.fail_erase)
        if self.d.pop(key, None) is None:
            raise OSError(-0x1102)

    def commit(self):
        self.commits += 1


def _nvs_board(tmp_path, nvs):
    class B(FsBoard):
        def nvs(self, ns):
            assert ns == "cfgvault"
            return nvs

    return B(tmp_path)


def test_the_auto_unseal_key_round_trips_through_nvs_and_only_32_bytes_pass(tmp_path):
    from configurator_fw.vault import VaultError, auto_key, set_auto

    nvs = _DictNvs()
    b = _nvs_board(tmp_path, nvs)
    assert auto_key(b) is None
    set_auto(b, None)  # off when already off: nothing to erase, no error
    key = bytes(range(1, 33))
    set_auto(b, key)
    assert nvs.commits == 2 and auto_key(b) == key
    set_auto(b, None)
    assert auto_key(b) is None and nvs.d == {}
    for bad in (key[:31], key + b"x", b""):
        nvs.d["auto"] = bad
        with pytest.raises(VaultError):
            auto_key(b)


def test_turning_auto_unseal_off_raises_on_an_nvs_error(tmp_path):
    from configurator_fw.vault import set_auto

    b = _nvs_board(tmp_path, _DictNvs(fail_erase=-0x1101))  # ESP_ERR_NVS_NOT_INITIALIZED
    with pytest.raises(OSError):
        set_auto(b, None)


def test_the_vault_file_bounds(tmp_path):
    """The iteration count is read back only within 1,000..10,000,000 and the salt must have
    16 bytes or more: a file that asks for less (or for a day of PBKDF2) is refused unread."""
    from configurator_fw import vault

    b = FsBoard(tmp_path)
    b.mkdir("store")
    assert vault.ITERATIONS == 20000  # docs/SEALING.md's figure
    for it, salt, ok in ((1000, 16, True), (999, 16, False), (10_000_000, 16, True),
                         (10_000_001, 16, False), (20000, 15, False), (20000, 32, True)):
        b.write_atomic(vault.FILE, json.dumps({"kdf": "pbkdf2-sha256", "it": it,
                                                "salt": "ab" * salt, "key": "00" * 80}).encode())
        if ok:
            assert vault.read_wrap(b)[1] == it
        else:
            with pytest.raises(vault.VaultError, match="unknown key derivation"):
                vault.read_wrap(b)


def test_the_index_mac_key_is_hkdf_of_the_vault_key():
    """Checked against the cryptography package's HKDF: a stored index MACed by one version
    of the firmware verifies under the next."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from configurator_fw.vault import Vault
    from shared import protocol

    key = bytes(range(32))
    k = HKDF(hashes.SHA256(), 32, None, b"cfgbox vault index").derive(key)
    v = Vault(key)
    assert v.mac("dev", "d1") == protocol.mac(k, "dev", "d1").hex()
    assert v.mac_ok("dev", "d1", protocol.mac(k, "dev", "d1").hex())
    assert not v.mac_ok("dev", "d2", protocol.mac(k, "dev", "d1").hex())


def test_a_record_copied_into_another_slot_or_group_fails_its_mac(tmp_path):
    """A record is bound to its slot and its id: a valid record of one device written over
    another's (the same group or another) is Tampered for the overwritten one alone."""
    from configurator_fw.store import Tampered
    from configurator_fw.store_devices import RECORD

    devs = ["d%03d" % i for i in range(40)]
    store, _ = new_store(tmp_path, devs)
    d = tmp_path / "store" / "d"
    g0 = bytearray((d / "00.bin").read_bytes())
    g1 = (d / "01.bin").read_bytes()
    g0[0:RECORD] = g0[RECORD:2 * RECORD]  # d001's record in d000's slot
    g0[2 * RECORD:3 * RECORD] = g1[0:RECORD]  # d016's (slot 16) in d002's slot
    (d / "00.bin").write_bytes(bytes(g0))
    store = reopen(store)
    for victim in ("d000", "d002"):
        with pytest.raises(Tampered):
            store.device(victim)
    assert store.device("d001")["slot"] == 1 and store.device("d016")["slot"] == 16
    states = dict(store.devices())
    assert states["d000"]["state"] == states["d002"]["state"] == "tampered"
    assert sum(r["state"] == "enrolled" for r in states.values()) == 38


@pytest.mark.parametrize("box_id, port, message", [
    ("", 80, "box id"), ("my box/1", 80, "box id"), ("b" * 33, 80, "box id"),
    ("cfgbox-1", 0, "port"), ("cfgbox-1", 99999, "port"), ("cfgbox-1", -5, "port"),
    ("cfgbox-1", True, "port"),
])
def test_the_box_set_up_refuses_a_bad_box_id_or_port_and_writes_nothing(tmp_path, box_id, port,
                                                                       message):
    """admin.setup on the box and `fleet init` on the host share Store.init's checks: the box's
    id travels in every hello answer and bootstrap, its port in every URL."""
    from configurator_fw.store import Store
    from configurator_fw.vault import Vault

    store = Store(FsBoard(str(tmp_path)), Vault(b"v" * 32))
    with pytest.raises(StoreError, match=message):
        store.init(box_id, "cfgbox", "passphrase 1", port=port)
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").iterdir())


def test_a_device_record_copied_under_another_id_reads_as_tampered(tmp_path):
    """Each record's MAC binds its slot and its device's id: sensor-1's valid record copied over
    sensor-2's place in the same group file is refused for sensor-2 (tampered, and the device
    API refuses it), and sensor-1 is untouched."""
    from configurator_fw import store_devices
    from configurator_fw.store import Tampered

    store, boot = new_store(tmp_path, ["sensor-1", "sensor-2"])
    path = tmp_path / "store" / "d" / "00.bin"
    raw = bytearray(path.read_bytes())
    n = store_devices.RECORD
    assert raw[0:n] != raw[n:2 * n]
    raw[n:2 * n] = raw[0:n]
    path.write_bytes(bytes(raw))
    again = reopen(store)
    with pytest.raises(Tampered):
        again.device("sensor-2")
    assert again.device("sensor-1")["state"] == "enrolled"
    states = {dev: rec["state"] for dev, rec in again.devices()}
    assert "tampered" in states.values() and states.get("sensor-1") == "enrolled", states


def test_an_older_validly_sealed_defaults_file_put_back_is_not_served_as_current(tmp_path):
    """The defaults' revision is bound into their seal and the store's MACed meta names the
    current one: an older defaults.bin copied back (valid on its own) is not served."""
    from configurator_fw.api import DeviceApi
    from hostbox import HELLO, HostDevice

    store, boot = new_store(tmp_path, ["sensor-1"])
    store.set_defaults({"ntp": "old.example"})
    old = (tmp_path / "store" / "defaults.bin").read_bytes()
    store.set_defaults({"ntp": "new.example"})
    current = (tmp_path / "store" / "defaults.bin").read_bytes()
    (tmp_path / "store" / "defaults.bin").write_bytes(old)
    lines = []
    api = DeviceApi(reopen(store), log=lines.append)
    s, out, _ = api.handle(HELLO, {"v": 2, "dev": "sensor-1", "cn": "00" * 16}, "s", T0)
    assert (s, out["error"]) == (503, "unavailable")  # nothing served, old or new
    assert any("older than the store's" in x for x in lines), lines
    (tmp_path / "store" / "defaults.bin").write_bytes(current)  # the right one back: served
    d = HostDevice(DeviceApi(reopen(store)), boot["sensor-1"])
    ver, plain = d.exchange(T0)
    assert b"new.example" in plain


def test_an_older_validly_sealed_override_stream_put_back_is_not_served(tmp_path):
    """A device's overrides carry their revision in their seal and the device's MACed record
    names the current one: an older override file copied back is not served as current."""
    from configurator_fw.api import DeviceApi
    from hostbox import HostDevice

    store, boot = new_store(tmp_path, ["sensor-1"])
    store.set_overrides("sensor-1", {"name": "old-name"})
    files = {p: p.read_bytes() for p in (tmp_path / "store" / "o").rglob("*") if p.is_file()}
    store.set_overrides("sensor-1", {"name": "new-name"})
    for p, data in files.items():
        p.write_bytes(data)
    from configurator_fw.store import Tampered

    d = HostDevice(DeviceApi(reopen(store), log=lambda m: None), boot["sensor-1"])
    with pytest.raises(Tampered, match="revisions of sensor-1 differ"):  # the app: a 503
        d.exchange(T0)  # refused before any config is made, old or new


# -- one state of the store (issue 17 item 1): files copied back never undo a revocation
class _NvsBoard(FsBoard):
    """FsBoard with an NVS that outlives its flash (a dict shared by every reopen), as the
    ESP32's NVS partition outlives files put back into LittleFS."""

    kept = None

    def nvs(self, ns):
        kept = self.kept

        class _Ns:
            def get_i32(self, k):
                if (ns, k) not in kept:
                    raise OSError(-0x1102)
                return kept[(ns, k)]

            def set_i32(self, k, v):
                kept[(ns, k)] = v

            def commit(self):
                pass
        return _Ns()


def _nvs_store(tmp_path, devices):
    from configurator_fw.store import Store
    from configurator_fw.vault import Vault

    _NvsBoard.kept = {}
    store = Store(_NvsBoard(str(tmp_path)), Vault(b"v" * 32))
    store.init("cfgbox-test", "cfgbox", "passphrase 1")
    return store, {dev: store.enroll(dev) for dev in devices}


def _reopen_nvs(tmp_path):
    from configurator_fw.store import Store
    from configurator_fw.vault import Vault

    return Store(_NvsBoard(str(tmp_path)), Vault(b"v" * 32))


def _files(root, *names):
    return {n: (root / "store" / n).read_bytes() for n in names}


def _put_back(root, files):
    for n, data in files.items():
        (root / "store" / n).write_bytes(data)


def _provisions(store, boot):
    from configurator_fw.api import DeviceApi
    from hostbox import HostDevice

    lines = []
    d = HostDevice(DeviceApi(store, log=lines.append), boot)
    try:
        d.hello(T0)
    except AssertionError:  # refused at hello (503: the store fails its checks)
        return False
    return d.auth(T0)[0] == 200


def test_a_revocation_is_not_undone_by_copying_its_files_back(tmp_path):
    """The issue's attack: with the box off, the pre-revocation secrets and records files of a
    revoked device copied back. Each is validly MACed; box.json, which names the revoked slots,
    is current: the device stays refused and reads as tampered, the others are untouched."""
    devs = ["sensor-%d" % i for i in range(20)]
    store, boot = _nvs_store(tmp_path, devs)
    before = _files(tmp_path, "t/00.bin", "d/00.bin", "d/01.bin")
    store.revoke("sensor-5")
    _put_back(tmp_path, before)
    again = _reopen_nvs(tmp_path)
    assert again.rolled_back is None  # box.json is the box's latest: a subset was put back
    assert again.lookup("sensor-5") is None
    assert not _provisions(again, boot["sensor-5"])
    states = dict((dev, rec["state"]) for dev, rec in again.devices())
    assert states["sensor-5"] == "tampered" and states["sensor-6"] == "enrolled", states
    assert again.recs.flags[5] & 0x04  # the page counts it as tampered
    assert _provisions(again, boot["sensor-6"]) and _provisions(again, boot["sensor-19"])


def test_a_rekeyed_devices_old_secret_copied_back_opens_nothing(tmp_path):
    store, boot = _nvs_store(tmp_path, ["sensor-1", "sensor-2"])
    old = _files(tmp_path, "t/00.bin", "d/00.bin")
    new = store.rekey("sensor-1")
    _put_back(tmp_path, old)
    again = _reopen_nvs(tmp_path)
    assert not _provisions(again, boot["sensor-1"])  # the leaked pair: nothing
    assert not _provisions(again, new)  # nor the new one: its entry is the old one now
    assert _provisions(again, boot["sensor-2"])


def test_box_json_put_back_with_the_rest_is_seen_and_needs_the_operator(tmp_path):
    """Every file of the store put back as it was before a revocation (a whole-image restore,
    or box.json with the rest): NVS, another partition, remembers the revision the box wrote.
    No device is served, the revoked one included, until the operator accepts the restore."""
    import shutil

    store, boot = _nvs_store(tmp_path, ["sensor-1", "sensor-2"])
    shutil.copytree(tmp_path / "store", tmp_path / "backup")
    store.revoke("sensor-2")
    shutil.rmtree(tmp_path / "store")
    shutil.copytree(tmp_path / "backup", tmp_path / "store")
    again = _reopen_nvs(tmp_path)
    assert again.rolled_back == (again.meta["srev"], again.meta["srev"] + 1)
    from configurator_fw.store import Tampered

    with pytest.raises(Tampered, match="older than"):
        again.lookup("sensor-1")
    assert not _provisions(again, boot["sensor-2"]) and not _provisions(again, boot["sensor-1"])
    again.accept_restore()  # the operator's word: the backup is the box's state now
    assert _provisions(_reopen_nvs(tmp_path), boot["sensor-1"])


def test_a_record_put_back_does_not_let_a_step_be_taken_twice(tmp_path):
    """A device's record copied back from before its last exchange holds an older step; the box
    restarted on it takes no step it may have taken before (NVS keeps the highest), so the
    device's code for that step is not accepted a second time; the next step is."""
    store, boot = _nvs_store(tmp_path, ["sensor-1", "sensor-2"])
    old = _files(tmp_path, "d/00.bin")
    assert _provisions(store, boot["sensor-1"])  # step T0 // 30 taken
    _put_back(tmp_path, old)
    again = _reopen_nvs(tmp_path)
    assert again.device("sensor-1")["ctr"] == -1  # the record as it was: valid, older
    assert not _provisions(again, boot["sensor-1"])  # the same step: refused
    assert not _provisions(again, boot["sensor-2"])  # any code of a step taken before the boot
    from configurator_fw.api import DeviceApi
    from hostbox import HostDevice

    d = HostDevice(DeviceApi(again, log=lambda m: None), boot["sensor-1"])
    d.hello(T0 + 30)
    assert d.auth(T0 + 30)[0] == 200  # the next step


def test_a_revocation_made_before_the_list_existed_is_listed_at_the_next_open(tmp_path):
    """A store from a box before box.json listed revocations: its revoked record is listed
    when the store is next opened, so copying its old files back no longer revives it."""
    import json as _json

    store, boot = _nvs_store(tmp_path, ["sensor-1", "sensor-2"])
    before = _files(tmp_path, "t/00.bin", "d/00.bin")
    store.revoke("sensor-2")
    meta = store.meta
    del meta["revoked"]  # as an older box wrote it
    store._save_meta()
    again = _reopen_nvs(tmp_path)
    assert again.meta["revoked"] == [1]
    assert _json.loads((tmp_path / "store" / "box.json").read_text().rpartition("\n")[0])[
        "revoked"] == [1]
    _put_back(tmp_path, before)
    assert not _provisions(_reopen_nvs(tmp_path), boot["sensor-2"])
