# The last status each device reported that the operator must still see after a reboot (a new
# version stored, a new error): one JSON file per group of store_devices.GROUP slots, each
# entry MACed under the vault. Written when an ack changes what the operator sees, never on an
# "unchanged" exchange; the live figures (heap, RSSI) of the others stay in RAM (api.py).
import json

from configurator_fw.store_devices import GROUP

KEYS = ("fw", "ver", "err", "heap", "rssi", "ssid", "app")  # what the admin page shows
MAX_TEXT = 96  # a reported string longer than this is cut


def group_file(slot):
    return "s/%02d.json" % (slot // GROUP)


def trim(status):
    """What is kept of a device's status: the keys the operator sees, strings cut short."""
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
    return out


class Statuses:
    def __init__(self, files, vault):
        self.f = files
        self.v = vault

    def _group(self, slot):
        try:
            return json.loads(self.f.read(group_file(slot)))
        except (OSError, ValueError):
            return {}

    def group(self, slot):
        """{id: status} of the group holding ``slot``, each entry checked (one that fails its
        MAC reads as None)."""
        out = {}
        for dev, entry in self._group(slot).items():
            try:
                text, tag = entry
                out[dev] = json.loads(text) if self.v.mac_ok("st:" + dev, text, tag) else None
            except (TypeError, ValueError):
                out[dev] = None
        return out

    def get(self, slot, dev):
        return self.group(slot).get(dev)

    def put(self, slot, dev, status):
        g = self._group(slot)
        if status is None:
            if g.pop(dev, None) is None:
                return
        else:
            text = json.dumps(trim(status))
            g[dev] = [text, self.v.mac("st:" + dev, text)]
        self.f.write_atomic(group_file(slot), json.dumps(g))
