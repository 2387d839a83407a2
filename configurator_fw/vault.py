# The one place every box secret passes through: sealed under the vault key before it is stored.
#
# The vault key is random (32 bytes) and rests only wrapped: sealed under a key stretched from
# the operator's passphrase with PBKDF2-HMAC-SHA256 (store/vault.json: salt, iteration count,
# wrapped key). Without the passphrase the store's flash holds no secret in clear; with it,
# everything opens (docs/SEALING.md). A box may keep its vault key in NVS too ("auto-unseal"):
# then it opens itself at power-on, and whoever holds its flash holds its secrets.
import json

from shared import protocol
from shared.hkdf import hkdf
from shared.pbkdf2 import Stepper
from shared.sealedbox import SealError, SealKey, SealReader, SealWriter

FILE = "store/vault.json"
ITERATIONS = 20000  # ~5.6-9.1 s on an ESP32 at 2,200-3,600 iterations/s (docs/SEALING.md)
_WRAP = b"cfgbox vault key"
_NS = "cfgvault"
_NVS_NOT_FOUND = -0x1102  # ESP_ERR_NVS_NOT_FOUND, as the port's OSError carries it


class VaultError(OSError):
    """The vault cannot be opened (no vault file, a corrupt one, an NVS error): nothing is
    written or made anew."""


class WrongPassphrase(ValueError):
    """The passphrase does not open this box's vault."""


def read_wrap(board):
    """The parsed vault file, or VaultError."""
    try:
        w = json.loads(board.read(FILE))
        salt, wrapped, it = bytes.fromhex(w["salt"]), bytes.fromhex(w["key"]), int(w["it"])
    except OSError:
        raise VaultError("no %s: this box has not been set up (README)" % FILE) from None
    except (ValueError, KeyError, TypeError):
        raise VaultError("%s is corrupt: restore the store from the fleet file" % FILE) from None
    if w.get("kdf") != "pbkdf2-sha256" or not 1000 <= it <= 10000000 or len(salt) < 16:
        raise VaultError("%s names an unknown key derivation" % FILE)
    return salt, it, wrapped


def unwrap_stepper(board, passphrase):
    """(Stepper, finish): run the Stepper to its end (slices of it between other work), then
    finish() gives the key or raises WrongPassphrase."""
    salt, it, wrapped = read_wrap(board)
    st = Stepper(passphrase.encode(), salt, it)

    def finish():
        try:
            return bytes(SealKey(st.key).open(wrapped, _WRAP))
        except SealError:
            raise WrongPassphrase("wrong passphrase") from None

    return st, finish


def unwrap(board, passphrase):
    """The vault key, derived at once (host tools, tests, admin.py over mpremote)."""
    st, finish = unwrap_stepper(board, passphrase)
    st.step(1 << 30)
    return finish()


def wrap(board, key, passphrase, iterations=ITERATIONS):
    """Write the vault file: ``key`` sealed under ``passphrase`` (an atomic rename: a power cut
    leaves the old file or the new, each whole)."""
    salt = board.random(16)
    st = Stepper(passphrase.encode(), salt, iterations)
    st.step(1 << 30)
    text = json.dumps({"kdf": "pbkdf2-sha256", "it": iterations, "salt": salt.hex(),
                       "key": SealKey(st.key).seal(key, _WRAP).hex()})
    board.write_atomic(FILE, text.encode())


def auto_key(board):
    """The vault key kept in NVS for auto-unseal, or None. Any NVS failure other than "not
    there" raises VaultError."""
    buf = bytearray(32)
    try:
        n = board.nvs(_NS).get_blob("auto", buf)
    except OSError as e:
        if (e.args[0] if e.args else None) == _NVS_NOT_FOUND:
            return None
        raise VaultError("NVS cannot be read (%s)" % (e,)) from None
    if n != 32:
        raise VaultError("the auto-unseal key in NVS has %d bytes, not 32" % n)
    return bytes(buf)


def set_auto(board, key):
    """Keep ``key`` in NVS (auto-unseal on) or erase it (``key`` None: off)."""
    nvs = board.nvs(_NS)
    if key is None:
        try:
            nvs.erase_key("auto")
        except OSError as e:
            if (e.args[0] if e.args else None) != _NVS_NOT_FOUND:
                raise
    else:
        nvs.set_blob("auto", key)
    nvs.commit()


class Vault:
    def __init__(self, key):
        self.key = key
        self._k = SealKey(key)
        self._mac = hkdf(key, b"", b"cfgbox vault index", 32)

    @classmethod
    def auto(cls, board):
        """The vault opened by its auto-unseal key; VaultError if auto-unseal is off."""
        key = auto_key(board)
        if key is None:
            raise VaultError("the box is sealed (auto-unseal is off): unlock it with the "
                             "passphrase")
        return cls(key)

    def mac(self, label, text):
        """The hex MAC that makes a stored index entry (``text``, bytes or str) tamper-evident;
        ``label`` names what and whose it is."""
        return protocol.mac(self._mac, label, text).hex()

    def index_key(self):
        """The key of the store's MACs (fixed-size records MAC with it directly)."""
        return self._mac

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
