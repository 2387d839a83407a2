# The one place every box secret passes through: sealed under the vault key before it is stored.
#
# Today the vault key is random and kept in the box's NVS. The operator-passphrase release derives
# it with PBKDF2 instead; nothing else changes: no secret reaches a file but through here.
from shared import protocol
from shared.hkdf import hkdf
from shared.sealedbox import SealKey, SealReader, SealWriter

_NS = "cfgvault"
_NVS_NOT_FOUND = -0x1102  # ESP_ERR_NVS_NOT_FOUND, as the port's OSError carries it


class VaultError(OSError):
    """The vault key cannot be read: the store stays as it is, nothing is made anew."""


class Vault:
    def __init__(self, key):
        self._k = SealKey(key)
        self._mac = hkdf(key, b"", b"cfgbox vault index", 32)

    @classmethod
    def from_nvs(cls, board):
        """The vault of this box, creating its key on first boot: only when NVS says the key
        does not exist. Any other failure to read it raises VaultError and writes nothing (a new
        key over the old one would leave the whole store unreadable)."""
        nvs = board.nvs(_NS)
        buf = bytearray(32)
        try:
            n = nvs.get_blob("key", buf)
        except OSError as e:
            if (e.args[0] if e.args else None) != _NVS_NOT_FOUND:
                raise VaultError("the vault key in NVS cannot be read (%s); the store is left "
                                 "untouched" % (e,)) from None
            buf = board.random(32)
            nvs.set_blob("key", buf)
            nvs.commit()
            n = 32
        if n != 32:
            raise VaultError("the vault key in NVS has %d bytes, not 32; the store is left "
                             "untouched" % n)
        return cls(bytes(buf))

    def mac(self, label, text):
        """The hex MAC that makes a stored index entry (``text``, bytes or str) tamper-evident;
        ``label`` names what and whose it is."""
        return protocol.mac(self._mac, label, text).hex()

    def mac_ok(self, label, text, tag):
        return protocol.mac_ok(self._mac, tag, label, text)

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
