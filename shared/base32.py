# Base32 (RFC 4648 section 6), as authenticator apps use it for TOTP secrets.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_VALID_TAIL = (0, 2, 4, 5, 7)  # characters left in a final group that can end a valid encoding


def encode(data, pad=True):
    """Encode bytes to an upper-case base32 ``str``; ``pad=False`` drops the '=' padding."""
    out = []
    acc = 0
    bits = 0
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(_ALPHABET[(acc >> bits) & 31])
    if bits:
        out.append(_ALPHABET[(acc << (5 - bits)) & 31])
    if pad and len(out) % 8:
        out.append("=" * (8 - len(out) % 8))
    return "".join(out)


def decode(text):
    """Decode base32 ``str`` or bytes to bytes.

    Case-insensitive; padding optional; spaces ignored (secrets are often shown in groups).
    Raises ``ValueError`` on any other character or an impossible length.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    text = text.replace(" ", "").upper()
    stripped = text.rstrip("=")
    if len(text) != len(stripped) and len(text) % 8:
        raise ValueError("base32 padding")
    if len(stripped) % 8 not in _VALID_TAIL:
        raise ValueError("base32 length")
    out = bytearray()
    acc = 0
    bits = 0
    for ch in stripped:
        v = _ALPHABET.find(ch)
        if v < 0:
            raise ValueError("base32 character")
        acc = ((acc << 5) | v) & 0xFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)
