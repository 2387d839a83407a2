# The one place that makes a TLS client context from a device's config, as the ESP32 port's
# `tls` module (extmod/modtls_mbedtls.c, MicroPython 1.23 and later) takes it:
# - certificates and keys as `bytes` or `str` only (a bytearray is refused), PEM or DER; PEM must
#   end in a NUL inside the buffer mbedTLS sees, which a MicroPython bytes object always has
#   (the config reader's bytes() gives exactly that, in one buffer);
# - the peer is verified only with verify_mode = CERT_REQUIRED and a CA loaded, and its name
#   only when wrap_socket() is given server_hostname (also the SNI);
# - certificate dates are checked against the board's clock (platform_mbedtls_time: the RTC),
#   which starts at 2000-01-01 on every power-on: the fleet's broker certificates are valid from
#   then (tools/broker.py); a broker with a public certificate needs the clock set first (NTP).
import tls


class TLSConfigError(ValueError):
    """The config's TLS material does not load (the message names the key)."""


def context(config, section="mqtt"):
    """A tls.SSLContext verifying the peer against ``section``.ca, presenting ``section``.cert
    and .key when the config holds them; TLSConfigError names what does not load."""
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ca = config.bytes(section + ".ca")
    if ca is None:
        raise TLSConfigError(section + ".ca: no CA in the config: the peer cannot be verified")
    try:
        ctx.load_verify_locations(ca)  # positional: the C method takes no keywords
    except ValueError:
        raise TLSConfigError(section + ".ca: not a certificate") from None
    del ca  # mbedTLS keeps its parsed copy (C heap); the text goes now
    cert = config.bytes(section + ".cert")
    if cert is not None:
        key = config.bytes(section + ".key")
        try:
            ctx.load_cert_chain(cert, key)
        except (TypeError, ValueError):
            raise TLSConfigError(section + ".cert/.key: not a certificate and its key") from None
    ctx.verify_mode = tls.CERT_REQUIRED
    return ctx
