# Host emulation — never copied to a board. The ESP32 `esp32.NVS` key-value store, kept as the
# port keeps it: in an NVS partition in ESP-IDF's own format (nvs_flash, page format version 2:
# 4 KB pages of a 32-byte header, a 32-byte entry-state bitmap and 126 entries of 32 bytes; blobs
# as BLOB_DATA chunks and a BLOB_IDX), 24 KB at 0x9000 as the port's partition table has it, in
# the file dev/NAME/nvs.bin. So an image made by Espressif's esp-idf-nvs-partition-gen is what
# the board boots from, and what the board writes is what esptool would read back.
#
# Semantics of ports/esp32/esp32_nvs.c over IDF's nvs_flash (v1.25.0 to v1.28.0): every set_* and
# erase_key is durable when it returns (IDF writes through; commit() only returns ESP_OK); one
# store per namespace whatever the number of handles; keys and namespaces of at most 15
# characters; errors raise OSError(-code, name) as the port's check_esp_err does
# (ports/esp32/mphalport.c). A power cut between two writes is injected with EMU_NVS_CUT_AT=N:
# the board dies (exit 99) just before its N-th set or erase, the N-1 before it being durable.
import binascii
import os
import struct
import sys

import emu_registry as reg

SIZE = 0x6000  # ports/esp32/partitions-4MiB.csv: nvs, data, nvs, 0x9000, 0x6000
PAGE = 4096
ENTRIES = 126
CUT_EXIT = 99
_EMPTY, _ACTIVE, _FULL = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFC
_U8, _I32, _BLOB_DATA, _BLOB_IDX = 0x01, 0x14, 0x42, 0x48
_ANY = 0xFF
_MAX_BLOB = 4000 * (SIZE // PAGE - 1) // 2  # Page::CHUNK_MAX_SIZE over the pages but the spare, /2

_NAMES = {0x1102: "ESP_ERR_NVS_NOT_FOUND", 0x1105: "ESP_ERR_NVS_NOT_ENOUGH_SPACE",
          0x1109: "ESP_ERR_NVS_KEY_TOO_LONG", 0x110C: "ESP_ERR_NVS_INVALID_LENGTH",
          0x110E: "ESP_ERR_NVS_VALUE_TOO_LONG"}
NOT_FOUND, NOT_ENOUGH_SPACE, KEY_TOO_LONG, INVALID_LENGTH, VALUE_TOO_LONG = (
    0x1102, 0x1105, 0x1109, 0x110C, 0x110E)
_writes = [0]


def _err(code):
    raise OSError(-code, _NAMES.get(code, "ESP_ERR_NVS"))


def _crc(data):
    return binascii.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


def _entry_crc(e):
    return _crc(bytes(e[0:4]) + bytes(e[8:32]))


def _key(name):
    b = name.encode()
    if not b or len(b) > 15:
        _err(KEY_TOO_LONG)
    return b


def partition():
    return reg.path("dev", reg.device(), "nvs.bin")


class _Part:
    """The partition: pages read entry by entry (32 bytes of board heap at a time)."""

    def __init__(self):
        self.path = partition()
        try:
            os.stat(self.path)
        except OSError:
            reg.ensure_dir("dev", reg.device())
            with open(self.path, "wb") as f:  # an erased partition, as a new chip's
                for _ in range(SIZE // PAGE):
                    f.write(b"\xff" * PAGE)
        self.scan()

    def _read(self, off, n):
        with open(self.path, "rb") as f:
            f.seek(off)
            return f.read(n)

    def _write(self, off, data):
        with open(self.path, "r+b") as f:
            f.seek(off)
            f.write(data)

    def scan(self):
        """Every live entry: items[(ns, kind, key)] = (page, index, span, entry) for namespaces,
        primitives and blob indexes; chunks[(ns, key, chunk)] = (page, index, span, entry)."""
        self.items, self.chunks, self.pages = {}, {}, []
        for p in range(SIZE // PAGE):
            head = self._read(p * PAGE, 32)
            state, seq = struct.unpack("<II", head[:8])
            if state == _EMPTY:
                self.pages.append((p, None, 0))
                continue
            if head[8] != 0xFE or struct.unpack("<I", head[28:32])[0] != _crc(head[4:28]):
                continue  # not a version-2 page, or a torn header: IDF does not use it
            bitmap = self._read(p * PAGE + 32, 32)
            used, i = 0, 0
            while i < ENTRIES:
                st = (bitmap[i >> 2] >> ((i & 3) * 2)) & 3
                if st == 3:
                    i += 1
                    continue
                used = i + 1
                if st != 2:
                    i += 1
                    continue
                e = self._read(p * PAGE + 64 + 32 * i, 32)
                span = e[2] or 1
                if struct.unpack("<I", e[4:8])[0] == _entry_crc(e):
                    name = bytes(e[8:24]).split(b"\0")[0]
                    if e[1] == _BLOB_DATA:
                        self.chunks[(e[0], name, e[3])] = (p, i, span, bytes(e[24:32]))
                    else:
                        kind = "blob" if e[1] == _BLOB_IDX else e[1]
                        self.items[(e[0], kind, name)] = (p, i, span, bytes(e[24:32]))
                    used = i + span
                i += span
            self.pages.append((p, seq, used if state == _ACTIVE else ENTRIES))
        self.seq = max([s for _, s, _ in self.pages if s is not None] or [-1])

    def namespace(self, name):
        item = self.items.get((0, _U8, name))
        if item:
            return item[3][0]
        used = [e[3][0] for k, e in self.items.items() if k[0] == 0 and k[1] == _U8]
        idx = max(used or [0]) + 1
        e = bytearray(b"\xff" * 32)
        e[0:4] = bytes((0, _U8, 1, _ANY))
        e[8:24] = name + b"\0" * (16 - len(name))
        e[24] = idx
        e[4:8] = struct.pack("<I", _entry_crc(e))
        self.append([e])
        return idx

    def _active(self, n):
        """(page, next free index) of the page taking ``n`` entries, opening one if needed."""
        for p, seq, used in self.pages:
            if seq == self.seq and used + n <= ENTRIES:
                return p, used
        for j, (p, seq, used) in enumerate(self.pages):
            if seq == self.seq and used < ENTRIES:
                self._write(p * PAGE, struct.pack("<I", _FULL))
                self.pages[j] = (p, seq, ENTRIES)
        empty = [p for p, seq, _ in self.pages if seq is None]
        if len(empty) <= 1:  # IDF keeps one free page for its garbage collection
            if not self.compact():
                _err(NOT_ENOUGH_SPACE)
            return self._active(n)
        p = empty[0]
        self.seq += 1
        head = bytearray(b"\xff" * 32)
        head[0:8] = struct.pack("<II", _ACTIVE, self.seq)
        head[8] = 0xFE
        head[28:32] = struct.pack("<I", _crc(head[4:28]))
        self._write(p * PAGE, head)
        self.pages = [(q, self.seq if q == p else s, 0 if q == p else u) for q, s, u in self.pages]
        return p, 0

    def append(self, entries):
        """Write entries (32 bytes each, the first a header whose span covers the rest) at the
        active page's next free index, then mark them written in the bitmap."""
        p, i = self._active(len(entries))
        self._write(p * PAGE + 64 + 32 * i, b"".join(bytes(e) for e in entries))
        self._mark(p, i, len(entries), 2)
        self.scan()

    def _mark(self, p, i, n, state):
        off = p * PAGE + 32
        bitmap = bytearray(self._read(off, 32))
        for j in range(i, i + n):
            bitmap[j >> 2] &= ~((3 ^ state) << ((j & 3) * 2)) & 0xFF
        self._write(off, bitmap)

    def erase(self, where):
        p, i, span, _ = where
        self._mark(p, i, span, 0)

    def compact(self):
        """IDF's garbage collection, done at once: the live entries rewritten into fresh pages
        (the file replaced whole: a cut leaves the old partition). False if nothing is freed."""
        live = sorted(list(self.items.values()) + list(self.chunks.values()))
        if sum(span for _, _, span, _ in live) > ENTRIES * (SIZE // PAGE - 1) - ENTRIES:
            return False
        tmp = self.path + ".gc"
        blank = b"\xff" * 256
        with open(tmp, "wb") as f:  # an erased partition, then the live entries into it: no
            for _ in range(SIZE // 256):  # page-sized buffer in the board's heap
                f.write(blank)
        with open(tmp, "r+b") as f:
            p, i = 0, 0

            def seal(p, n, active):
                head = bytearray(b"\xff" * 64)  # the page's header and its entry bitmap
                f.seek(p * PAGE)
                f.write(_seal(head, p, n, active))

            for src, j, span, _ in live:
                if i + span > ENTRIES:
                    seal(p, i, False)
                    p, i = p + 1, 0
                f.seek(p * PAGE + 64 + 32 * i)
                f.write(self._read(src * PAGE + 64 + 32 * j, 32 * span))
                i += span
            seal(p, i, True)
        os.rename(tmp, self.path)
        self.scan()
        return True


_cache = [None]


def _part():
    """The partition's index, read once per boot (only this board writes its NVS while it
    runs); loaded by emu_boot before the firmware starts, so its heap is the emulation's."""
    if _cache[0] is None:
        _cache[0] = _Part()
    return _cache[0]


def _seal(page, seq, n, active):
    page[0:8] = struct.pack("<II", _ACTIVE if active else _FULL, seq)
    page[8] = 0xFE
    page[28:32] = struct.pack("<I", _crc(page[4:28]))
    for j in range(n):
        page[32 + (j >> 2)] &= ~(1 << ((j & 3) * 2)) & 0xFF
    return page


def _power_cut_point():
    """EMU_NVS_CUT_AT=N: the power fails just before this board's N-th NVS write."""
    cut = os.getenv("EMU_NVS_CUT_AT")
    _writes[0] += 1
    if cut and _writes[0] >= int(cut):
        print("[emu] power cut before NVS write %d" % _writes[0])
        sys.exit(CUT_EXIT)


class NVS:
    def __init__(self, namespace):
        # nvs_open(NVS_READWRITE), as esp32_nvs_make_new calls it, writes the namespace's
        # entry when it is new (Storage::createOrOpenNamespace)
        self._ns_name = _key(namespace)
        self._ns = None
        part = _part()
        item = part.items.get((0, _U8, self._ns_name))
        if item:
            self._ns = item[3][0]
        else:
            _power_cut_point()
            self._ns = part.namespace(self._ns_name)

    def _entry(self, ns, kind, key, span=1, chunk=_ANY):
        e = bytearray(b"\xff" * 32)
        e[0:4] = bytes((ns, kind, span, chunk))
        e[8:24] = key + b"\0" * (16 - len(key))
        return e

    def set_i32(self, key, value):
        k = _key(key)
        if not -(2**31) <= value < 2**31:
            raise OverflowError("overflow converting long int to machine word")
        _power_cut_point()
        part = _part()
        old = part.items.get((self._ns, _I32, k))
        e = self._entry(self._ns, _I32, k)
        e[24:28] = struct.pack("<i", value)
        e[4:8] = struct.pack("<I", _entry_crc(e))
        part.append([e])  # the new entry first, then the old one erased (Storage::writeItem)
        if old:
            part.erase(old)

    def get_i32(self, key):
        k = _key(key)
        part = _part()
        item = part.items.get((self._ns, _I32, k))
        if item is None:
            _err(NOT_FOUND)
        return struct.unpack("<i", item[3][0:4])[0]

    def set_blob(self, key, value):
        k = _key(key)
        data = bytes(value)
        if len(data) > _MAX_BLOB:
            _err(VALUE_TOO_LONG)
        _power_cut_point()
        part = _part()
        old = part.items.get((self._ns, "blob", k))
        # a new version's chunks start at the other half of the chunk numbers (VER_0 / VER_1)
        start = 128 if old and old[3][5] == 0 else 0
        off, n = 0, 0
        while off < len(data) or n == 0:
            size = min(len(data) - off, 32 * (ENTRIES - 1))
            span = 1 + (size + 31) // 32
            head = self._entry(self._ns, _BLOB_DATA, k, span, start + n)
            head[24:32] = struct.pack("<HHI", size, 0xFFFF, _crc(data[off:off + size]))
            head[4:8] = struct.pack("<I", _entry_crc(head))
            body = data[off:off + size] + b"\xff" * (32 * (span - 1) - size)
            part.append([head] + [body[j:j + 32] for j in range(0, len(body), 32)])
            off, n = off + size, n + 1
        idx = self._entry(self._ns, _BLOB_IDX, k)
        idx[24:32] = struct.pack("<IBBH", len(data), n, start, 0xFFFF)
        idx[4:8] = struct.pack("<I", _entry_crc(idx))
        part.append([idx])
        if old:
            self._erase_blob(part, old, k)

    def _erase_blob(self, part, idx, k):
        count, start = idx[3][4], idx[3][5]
        part.erase(idx)
        for c in range(start, start + count):
            chunk = part.chunks.get((self._ns, k, c))
            if chunk:
                part.erase(chunk)

    def get_blob(self, key, buf):
        k = _key(key)
        part = _part()
        idx = part.items.get((self._ns, "blob", k))
        if idx is None:
            _err(NOT_FOUND)
        size, count, start = struct.unpack("<IBB", idx[3][0:6])
        if len(buf) < size:
            _err(INVALID_LENGTH)
        at = 0
        for c in range(start, start + count):
            chunk = part.chunks.get((self._ns, k, c))
            if chunk is None:
                _err(NOT_FOUND)
            p, i, span, e = chunk
            n = struct.unpack("<H", e[0:2])[0]
            data = part._read(p * PAGE + 64 + 32 * (i + 1), n)
            if _crc(data) != struct.unpack("<I", e[4:8])[0]:
                _err(NOT_FOUND)
            buf[at:at + n] = data
            at += n
        return size

    def erase_key(self, key):
        k = _key(key)
        part = _part()
        blob = part.items.get((self._ns, "blob", k))
        found = part.items.get((self._ns, _I32, k)) or blob
        if found is None:
            _err(NOT_FOUND)
        _power_cut_point()
        if found is blob:
            self._erase_blob(part, found, k)
        else:
            part.erase(found)

    def commit(self):
        """IDF's nvs_commit: every write is already on the flash."""
