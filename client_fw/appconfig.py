# What main.py hands the application: the stored config read on demand, by key path, from the
# encrypted file (never whole in RAM), and the state this boot's check left it in.
import json

from client_fw import bootstrap
from client_fw.storage import Storage
from shared import records
from shared.sealedbox import SealError

PROVISIONED = "provisioned"  # this boot's check stored a config or found the stored one current
STALE = "stale"  # a config is stored, but this boot's check did not confirm it (box off, ...)
NONE = "none"  # no config that opens: never provisioned, missing bootstrap, or tampered with
_FRESH = ("ok", "unchanged")


def _path(path):
    return path.split(".") if isinstance(path, str) else list(path)


def _ints(reader):
    """The bytes of the current record's value, one int at a time, through the reader's buffer."""
    while True:
        piece = reader.chunk()
        if piece is None:
            return
        for b in piece:
            yield b


_ESCAPES = {110: 10, 116: 9, 114: 13, 98: 8, 102: 12, 47: 47, 92: 92, 34: 34}  # n t r b f / \\ "


def _chars(src):
    """The UTF-8 bytes a JSON string's text (from the opening quote) decodes to, streamed."""
    if next(src, None) != 34:
        raise TypeError("not a string")
    for c in src:
        if c == 34:
            return
        if c != 92:
            yield c
            continue
        e = next(src)
        if e != 117:
            yield _ESCAPES[e]
            continue
        cp = int(bytes(next(src) for _ in range(4)), 16)
        if 0xD800 <= cp < 0xDC00:  # a surrogate pair as one code point
            next(src), next(src)
            cp = 0x10000 + ((cp - 0xD800) << 10) + int(bytes(next(src) for _ in range(4)),
                                                        16) - 0xDC00
        yield from chr(cp).encode()


def _split_list(src):
    """Each item of a JSON array's text (ints from ``src``) parsed alone: only one item is held
    at a time."""
    if next(src, None) != 91:
        raise TypeError("not a list")
    item = bytearray()
    depth = 0
    quoted = escaped = False
    for c in src:
        if quoted:
            quoted = escaped or c != 34
            escaped = not escaped and c == 92
        elif c == 34:
            quoted = True
        elif c in (91, 123):  # [ {
            depth += 1
        elif c in (93, 125) and depth:  # ] }
            depth -= 1
        elif depth == 0 and c in (44, 93):  # , ] at the list's own level
            if item:
                yield json.loads(item)
            item = bytearray()
            continue
        elif depth == 0 and c in (32, 9, 10, 13):
            continue
        item.append(c)


class _Sized:
    """An iterable that tells its length first: bytes() then allocates exactly that much and
    fills it as the iterator runs, so a large value lands in one buffer with no second copy."""

    def __init__(self, n, make):
        self._n = n
        self._make = make

    def __len__(self):
        return self._n

    def __iter__(self):
        return self._make()


class Config:
    """The device's stored config, opened with its own keys. ``state`` is PROVISIONED, STALE or
    NONE; ``status`` is this boot's check (e.g. "ok", "box not found"), ``version`` the stored
    config's version (0 for none), ``device`` the device's id (None without bootstrap),
    ``error`` why there is no config, if that is known."""

    def __init__(self, board, status=None):
        self.board = board
        self._open(status)

    def _open(self, status):
        self.status = status
        self.version = 0
        self.device = None
        self.error = None
        self._storage = None
        try:
            boot = bootstrap.read(self.board)
            self.device = boot["dev"]
            self._storage = Storage(self.board, boot["dev"], boot["k"])
            self.version = self._storage.version()
        except (bootstrap.Missing, SealError, ValueError, OSError, MemoryError) as e:
            self.error = str(e) or type(e).__name__
        self.state = (NONE if not self.version else
                      PROVISIONED if status in _FRESH else STALE)

    def _seek(self, path):
        """(reader, file, kind, path) at the record of ``path``; KeyError if absent."""
        if self._storage is None or not self.version:
            raise KeyError("no config stored")
        return self._storage.seek(_path(path))

    def get(self, path, default=None):
        """The value at ``path`` ("mqtt.host", or a tuple of keys): a string, number, bool, list,
        or an object rebuilt from its records; ``default`` if absent. Only that value is read
        into RAM. Raises SealError if the file was altered since it was stored."""
        try:
            reader, f, kind, at = self._seek(path)
        except KeyError:
            return default
        try:
            return records.read_value(reader, kind, at)
        finally:
            f.close()

    def bytes(self, path, default=None):
        """A string value as one ``bytes`` object of its UTF-8 (the form ``tls`` takes for a PEM:
        NUL-terminated, as mbedTLS needs): the value's size in RAM and no more, for the price
        of reading the file four times (check and measure, check and fill). ``default`` if
        absent."""
        try:
            reader, f, kind, _ = self._seek(path)
        except KeyError:
            return default
        try:
            if kind != records.VALUE:
                raise TypeError("not a string")
            n = 0
            for _ in _chars(_ints(reader)):
                n += 1
        finally:
            f.close()
        files = []

        def fill():
            r, f2, _, _ = self._seek(path)
            files.append(f2)
            return _chars(_ints(r))

        try:
            # len n + 1: bytes() then needs no final resize for the terminating NUL
            return bytes(_Sized(n + 1, fill))
        finally:
            for f2 in files:
                f2.close()

    def items(self, path):
        """The items of the list at ``path`` (e.g. "wifi"), each parsed alone as the list is read:
        the list is never whole in RAM. Nothing if absent."""
        try:
            reader, f, kind, _ = self._seek(path)
        except KeyError:
            return
        try:
            if kind != records.VALUE:
                raise TypeError("not a list")
            yield from _split_list(_ints(reader))
        finally:
            f.close()

    def load(self):
        """The whole config as a dict, or None: all of it in RAM at once (about 3x its JSON size
        while it is built), for small configs only."""
        if self._storage is None or not self.version:
            return None
        return self._storage.load()[1]

    def check(self, force=True):
        """Check with the box now (the application must have left the site's network): loads
        the provisioning code, runs it, drops it again. Returns the status and updates
        ``state``, ``status`` and ``version``. Never raises: a check that cannot even load
        (out of memory) is the status "check failed (MemoryError)", as at boot."""
        try:
            from client_fw.device import Device, release

            try:
                status = Device(self.board).check(force=force)
            finally:
                # this object keeps the modules it runs on alive; the provisioning code goes
                release()
        except Exception as e:  # noqa: BLE001 - the application goes on whatever happens
            status = "check failed (%s)" % (type(e).__name__,)
        self._open(status)
        return status

    def report(self, error):
        """Record the application's error (a short text; None clears it): the next check tells
        the box (``err`` in the ack), and it shows on the admin page."""
        bootstrap.set_app_error(self.board, error)
