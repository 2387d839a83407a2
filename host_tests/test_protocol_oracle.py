# The known-answer vectors of protocol v2 agree with an implementation written from
# docs/PROTOCOL.md alone (oracle/protocol_v2.py: CPython hmac and `cryptography`, no shared/),
# and the product's own code agrees with both (the vector file also runs under MicroPython).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "oracle"))
sys.path.insert(0, str(Path(__file__).parent / "vectors"))

import protocol_v2 as oracle  # noqa: E402
import test_vec_protocol as kat  # noqa: E402


def test_vectors_are_the_oracles():
    assert {k: v.hex() for k, v in oracle.vectors().items()} == kat.V
    assert oracle.CONFIG == kat.CONFIG  # the records, built from PROTOCOL.md s.3
