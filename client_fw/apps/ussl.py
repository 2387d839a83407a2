# umqtt.simple 1.3.4 (the release on PyPI) wraps its socket with `ussl.wrap_socket(sock,
# **ssl_params)`; MicroPython 1.23 and later have no `ussl` (TLS is `tls`, with contexts). This
# gives it one: ssl_params = {"context": what wraps (a tls.SSLContext), "server_hostname": the
# broker's name}.
# Newer umqtt.simple (frozen into the ESP32 port's firmware) calls the context itself.


def wrap_socket(sock, context, server_hostname=None):
    return context.wrap_socket(sock, server_hostname=server_hostname)
