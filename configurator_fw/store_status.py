# The last status each device reported that the operator must still see after a reboot (a new
# version stored, a new error): one fixed-size entry per slot, in group files of
# store_devices.GROUP entries, each MACed under the vault and rewritten in place (no group is
# ever parsed or rebuilt: an ack at a full box must not need a large block). Written when an ack
# changes what the operator sees, never on an "unchanged" exchange; the live figures (heap,
# RSSI) of the others stay in RAM (api.py).
#
# An entry (ENTRY bytes): the status's JSON text length (2 bytes), the text (at most TEXT
# bytes, zero padded), a 16-byte MAC over the slot, the id and the text; zeros for none.
import json

from configurator_fw.store_devices import GROUP
from shared import ct, protocol

KEYS = ("fw", "ver", "err", "heap", "rssi", "ssid", "app")  # what the admin page shows
_DROP = ("app", "ssid", "rssi", "heap", "fw", "ver")  # given up, in this order, to fit
ENTRY = 128
TEXT = ENTRY - 2 - 16
MAX_TEXT = 64  # a reported string longer than this is cut


def group_file(slot):
    return "s/%02d.bin" % (slot // GROUP)


def trim(status):
    """What is kept of a device's status: the keys the operator sees, strings cut short, as a
    JSON text of at most TEXT bytes (its error kept longest)."""
    out = {}
    for k in KEYS:
        if k not in status:
            continue
        v = status[k]
        if isinstance(v, str):
            v = v[:MAX_TEXT]
        elif not (v is None or isinstance(v, (int, float, bool))):
            v = str(v)[:MAX_TEXT]
        out[k] = v
    text = json.dumps(out)
    for k in _DROP:
        if len(text.encode()) <= TEXT:
            break
        out.pop(k, None)
        text = json.dumps(out)
    while len(text.encode()) > TEXT and isinstance(out.get("err"), str) and out["err"]:
        out["err"] = out["err"][:-8]
        text = json.dumps(out)
    return text if len(text.encode()) <= TEXT else "{}"


class Statuses:
    def __init__(self, files, vault):
        self.f = files
        self.v = vault

    def _tag(self, slot, dev, text):
        return protocol.mac(self.v.index_key(), "st", slot, dev, text)[:16]

    def _open(self, slot, dev, raw):
        n = int.from_bytes(raw[0:2], "big")
        if not n or n > TEXT or len(raw) < ENTRY:
            return None
        text = bytes(raw[2:2 + n])
        if not ct.equal(self._tag(slot, dev, text), raw[ENTRY - 16:ENTRY]):
            return None  # an entry that fails its MAC reads as no status
        try:
            return json.loads(text)
        except ValueError:
            return None

    def group(self, slot, names):
        """{id: status} of the group holding ``slot``, for ``names`` ({slot: id}) in it, read in
        one go; an entry that fails its MAC reads as None."""
        try:
            raw = self.f.read(group_file(slot))
        except OSError:
            return {}
        g = slot // GROUP * GROUP
        mv = memoryview(raw)
        out = {}
        for s, dev in names.items():
            if g <= s < g + GROUP:
                i = (s - g) * ENTRY
                out[dev] = self._open(s, dev, mv[i:i + ENTRY])
        return out

    def get(self, slot, dev):
        try:
            raw = self.f.read_at(group_file(slot), (slot % GROUP) * ENTRY, ENTRY)
        except OSError:
            return None
        return self._open(slot, dev, raw)

    def put(self, slot, dev, status):
        name = group_file(slot)
        entry = bytearray(ENTRY)
        if status is not None:
            text = trim(status).encode()
            entry[0:2] = len(text).to_bytes(2, "big")
            entry[2:2 + len(text)] = text
            entry[ENTRY - 16:] = self._tag(slot, dev, text)
        if not self.f.exists(name):
            if status is None:
                return
            self.f.make(name, GROUP * ENTRY)
        self.f.write_at(name, (slot % GROUP) * ENTRY, bytes(entry))
