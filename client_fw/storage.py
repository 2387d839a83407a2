# The device's encrypted, tamper-evident config file:
#   ver (4 B) | seal(KS, config records, TR("cfgbox/2 store", dev, ver))
# written and read as a stream through a few hundred bytes of RAM, never held whole.
from client_fw import bootstrap
from shared import protocol, records
from shared.sealedbox import SealError, SealKey, SealReader, SealWriter

FILE = "config.bin"
_CHUNK = 256


class Storage:
    def __init__(self, board, dev, k):
        """``k``: the device's long-term key K (PROTOCOL.md s.1), from DK and T."""
        self.b = board
        self.dev = dev
        self._kk = k
        self._k = self._key(bootstrap.salt(board))

    def _key(self, salt):
        # KS binds the file to this chip (unique_id, the WiFi MAC: public) and to the salt the
        # device made itself and keeps in NVS (never sent anywhere); no salt yet: no config
        return SealKey(protocol.storage_key(self._kk, self.b.unique_id() + salt)) if salt else None

    def _aad(self, ver):
        return protocol.tr("cfgbox/2 store", self.dev, ver)

    def _open(self):
        """(version, SealReader, file) over the stored config; OSError if there is none."""
        if self._k is None:
            raise OSError(2)  # no salt: nothing was ever stored under this chip's key
        f = self.b.open_read(FILE)
        head = f.read(4)
        if len(head) != 4:
            f.close()
            raise SealError("config file truncated")
        ver = int.from_bytes(head, "big")
        return ver, SealReader(self._k, self._aad(ver), f.readinto, _CHUNK), f

    def version(self):
        """The version of the stored config after checking all of it; 0 if there is none.
        Raises SealError if it was tampered with, truncated or copied from another chip."""
        try:
            ver, sealed, f = self._open()
        except OSError:
            return 0
        try:
            sealed.verify()
        finally:
            f.close()
        return ver

    def records(self):
        """(RecordReader, file) over the stored config; call version() first to check it."""
        _, sealed, f = self._open()
        return records.RecordReader(sealed.readinto), f

    def load(self):
        """(version, config dict); (0, None) if absent; raises SealError if tampered."""
        ver = self.version()
        if not ver:
            return 0, None
        reader, f = self.records()
        try:
            return ver, records.unflatten(reader)
        finally:
            f.close()

    def seek(self, keys):
        """(RecordReader, file, kind, path) at the value stored at ``keys`` (a list of str), the
        whole file checked first; KeyError if absent, SealError if it was tampered with. The
        caller reads the value and closes the file."""
        if not self.version():
            raise KeyError("no config stored")
        reader, f = self.records()
        try:
            kind, path = records.locate(reader, keys)
        except BaseException:
            f.close()
            raise
        return reader, f, kind, path

    def save_stream(self, ver, sealed):
        """Store the config that ``sealed`` (a SealReader of the box's answer) gives: re-sealed
        under KS into a temporary file, which replaces the stored one only once ``sealed``'s
        tag has verified. Until then nothing of it is used; on SealError the old file stays."""
        if self._k is None:
            self._k = self._key(bootstrap.salt(self.b, create=True))
        buf = bytearray(_CHUNK)

        def fill(write):
            w = SealWriter(self._k, self._aad(ver), write, _CHUNK)
            total = 0
            while True:
                n = sealed.readinto(buf)
                if not n:
                    break
                total += n
                if total > protocol.MAX_RECORDS:  # no endless stream fills the flash
                    raise SealError("config stream over %d bytes" % protocol.MAX_RECORDS)
                w.write(memoryview(buf)[:n])
            sealed.verify()  # raises before the rename: the temporary file is dropped
            w.close()

        try:
            self.b.write_atomic(FILE, ver.to_bytes(4, "big"), fill)
        except (SealError, OSError, ValueError):
            self.b.remove(FILE + ".tmp")
            raise
