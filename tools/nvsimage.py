"""A device's bootstrap as an NVS partition image, made by Espressif's esp-idf-nvs-partition-gen
(pinned in requirements.txt), for `fleet nvs-image` and `make flash-client METHOD=nvs`.

The image is the port's whole NVS partition (0x6000 bytes at 0x9000, ports/esp32/partitions-
4MiB.csv) holding namespace ``cfgbox`` with one blob ``boot``: the bootstrap as
client_fw/bootstrap.encode() writes it (docs/PROTOCOL.md s.1). esptool writes it at NVS_OFFSET.
``read()`` decodes a partition (the tool has no decoder of its own): tests use it to look into
what an emulated board wrote.
"""
import base64
import csv
import io
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # client_fw's encoder, also when run as a script from elsewhere
    sys.path.insert(0, ROOT)
from client_fw import bootstrap  # noqa: E402

NVS_OFFSET = 0x9000
NVS_SIZE = 0x6000
NAMESPACE = "cfgbox"


def bootstrap_blob(boot):
    return bootstrap.encode(boot)


def csv_text(boot):
    """The generator's input: the namespace, then the bootstrap blob (base64 -> a v2 blob)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["key", "type", "encoding", "value"])
    w.writerow([NAMESPACE, "namespace", "", ""])
    w.writerow(["boot", "data", "base64", base64.b64encode(bootstrap_blob(boot)).decode()])
    return out.getvalue()


def make(boot, out, keyfile=None):
    """Write ``boot``'s NVS image to ``out`` with the generator; with ``keyfile`` (a path), the
    image is encrypted (NVS encryption, XTS-AES) under a new key the generator writes there."""
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="cfgbox-nvs-") as d:
        src = Path(d) / "boot.csv"
        src.write_text(csv_text(boot))
        src.chmod(0o600)
        cmd = [sys.executable, "-m", "esp_idf_nvs_partition_gen"]
        if keyfile:
            cmd += ["encrypt", str(src), "image.bin", hex(NVS_SIZE), "--keygen",
                    "--keyfile", "nvs-keys.bin"]
        else:
            cmd += ["generate", str(src), str(out), hex(NVS_SIZE)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
        if r.returncode:
            raise RuntimeError("esp-idf-nvs-partition-gen failed: %s" % (r.stderr or r.stdout))
        if keyfile:
            made = list(Path(d).rglob("nvs-keys.bin"))
            if len(made) != 1:
                raise RuntimeError("esp-idf-nvs-partition-gen wrote no key file: %s" % r.stdout)
            Path(keyfile).write_bytes(made[0].read_bytes())
            Path(keyfile).chmod(0o600)
            out.write_bytes(next(Path(d).rglob("image.bin")).read_bytes())
    out.chmod(0o600)
    return out


def _crc(data):
    return zlib.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


def read(data):
    """{(namespace, key): value} of an NVS partition (bytes): i32 as int, u8 as int, blobs as
    bytes; entries whose CRC fails are skipped, as IDF skips them."""
    pages = []
    for p in range(len(data) // 4096):
        page = data[p * 4096:(p + 1) * 4096]
        state, seq = struct.unpack_from("<II", page)
        if state == 0xFFFFFFFF or page[8] != 0xFE:
            continue
        if struct.unpack_from("<I", page, 28)[0] != _crc(page[4:28]):
            continue
        pages.append((seq, page))
    names, prim, idx, chunks = {}, {}, {}, {}
    for _, page in sorted(pages, key=lambda x: x[0]):
        i = 0
        while i < 126:
            st = (page[32 + (i >> 2)] >> ((i & 3) * 2)) & 3
            if st != 2:
                i += 1
                continue
            e = page[64 + 32 * i: 96 + 32 * i]
            span = e[2] or 1
            if struct.unpack_from("<I", e, 4)[0] == _crc(e[0:4] + e[8:32]):
                key = e[8:24].split(b"\0")[0].decode()
                if e[0] == 0 and e[1] == 0x01:
                    names[e[24]] = key
                elif e[1] == 0x42:
                    n = struct.unpack_from("<H", e, 24)[0]
                    chunks[(e[0], key, e[3])] = page[96 + 32 * i: 96 + 32 * i + n]
                elif e[1] == 0x48:
                    idx[(e[0], key)] = struct.unpack_from("<IBB", e, 24)
                elif e[1] == 0x14:
                    prim[(e[0], key)] = struct.unpack_from("<i", e, 24)[0]
                elif e[1] == 0x01:
                    prim[(e[0], key)] = e[24]
            i += span
    out = {(names.get(ns, ns), k): v for (ns, k), v in prim.items()}
    for (ns, k), (size, count, start) in idx.items():
        blob = b"".join(chunks.get((ns, k, c), b"") for c in range(start, start + count))
        if len(blob) == size:
            out[(names.get(ns, ns), k)] = blob
    return out
