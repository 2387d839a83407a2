# The device's encrypted, tamper-evident config file: ver (4 B) | seal(KS, JSON, TR(dev, ver)).
import json

from shared import protocol
from shared.sealedbox import SealError, SealKey

FILE = "config.bin"


class Storage:
    def __init__(self, board, dev, dk):
        self.b = board
        self.dev = dev
        self._k = SealKey(protocol.storage_key(dk, board.unique_id()))

    def _aad(self, ver):
        return protocol.tr("cfgbox/1 store", self.dev, ver)

    def load(self):
        """(version, config dict); (0, None) if absent; raises SealError if tampered."""
        try:
            raw = self.b.read(FILE)
        except OSError:
            return 0, None
        if len(raw) < 4:
            raise SealError("config file truncated")
        ver = int.from_bytes(raw[:4], "big")
        pt = self._k.open(memoryview(raw)[4:], self._aad(ver))
        del raw
        return ver, json.loads(pt)

    def save(self, ver, cfg_json):
        """Seal and write atomically; the old file stays whole until the rename."""
        box = self._k.seal(cfg_json, self._aad(ver))
        self.b.write_atomic(FILE, ver.to_bytes(4, "big"), box)  # two parts: no 16 KB copy
