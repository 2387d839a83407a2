# Constant-time comparison of MACs and codes: MicroPython has no hmac.compare_digest.


def equal(a, b):
    """True if the byte strings ``a`` and ``b`` are equal.

    The time taken depends only on the lengths (which are not secret), never on where the
    first difference is. Accepts bytes, bytearray or memoryview; ``str`` is encoded as UTF-8.
    """
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0
