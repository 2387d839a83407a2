# The one place every box secret passes through: sealed under the vault key before it is stored.
#
# Today the vault key is random and kept in the box's NVS. The operator-passphrase release derives
# it with PBKDF2 instead; nothing else changes: no secret reaches a file but through here.
from shared.sealedbox import SealKey, SealReader, SealWriter

_NS = "cfgvault"


class Vault:
    def __init__(self, key):
        self._k = SealKey(key)

    @classmethod
    def from_nvs(cls, board):
        """The vault of this box, creating its key on first boot."""
        nvs = board.nvs(_NS)
        buf = bytearray(32)
        try:
            nvs.get_blob("key", buf)
        except OSError:
            buf = board.random(32)
            nvs.set_blob("key", buf)
            nvs.commit()
        return cls(bytes(buf))

    def seal(self, data, label):
        """Seal ``data`` (bytes) for storage; ``label`` names its purpose (bound as aad)."""
        return self._k.seal(data, label.encode())

    def open(self, box, label):
        """Open what ``seal`` made with the same label; raises SealError if tampered."""
        return self._k.open(box, label.encode())

    def writer(self, label, out):
        """A SealWriter streaming a sealed box with ``label`` to ``out``."""
        return SealWriter(self._k, label.encode(), out)

    def reader(self, label, src):
        """A SealReader over a stream ``seal``/``writer`` made with ``label``."""
        return SealReader(self._k, label.encode(), src)
