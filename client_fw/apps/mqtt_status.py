# The reference application (opt-in: a board's app.py imports it): joins the site's WiFi from
# the delivered list, in order; connects to MQTT over TLS with the device's own credentials,
# the broker verified against the delivered CA; publishes a retained status to the device's own
# topic and keeps it fresh; reconnects with back-off. A refused credential is recorded (the box
# sees it as `err` at the next check) and asks the box for a new config at once.
import gc
import json
import os
import time

from client_fw import FW_VERSION, wlan
from client_fw.apps import tlsconf

TOPIC = "devices/%s/status"
# CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3) that a new config can mend
_REFUSED = {4: "bad user name or password", 5: "not authorized"}
_MAX_BACKOFF_MS = 60000
_RECHECK_MS = 300000  # at most one check with the box per 5 minutes for the same refusal


class _Wrapper:
    """The TLS context as umqtt.simple is given it: wraps the socket as the context does and
    keeps the plain socket underneath, which the app waits on (see StatusApp.serve)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.raw = None

    def wrap_socket(self, sock, server_hostname=None):
        self.raw = sock
        return self.ctx.wrap_socket(sock, server_hostname=server_hostname)


class Refused(Exception):
    """The broker refused this device's credential (CONNACK 4 or 5)."""


def _reason(e):
    """A short line for the operator: the port's tls raises ValueError with mbedTLS's verify
    text for a peer it does not trust, OSError(errno) for the network."""
    if isinstance(e, tlsconf.TLSConfigError):
        return str(e)
    if isinstance(e, OSError):
        return "network error %s" % (e.args[0] if e.args else "")
    if not isinstance(e, ValueError):
        return type(e).__name__
    text = str(e).strip().split("\n")[0]
    if text.startswith("The "):
        text = text[4:]
    return ("tls: " if isinstance(e, ValueError) else type(e).__name__ + ": ") + text


def _jitter(ms):
    return ms + int.from_bytes(os.urandom(2), "big") % (ms // 4 + 1)


class StatusApp:
    """The application loop. ``config`` is main.py's reader (client_fw.appconfig.Config);
    ``mqtt`` the MQTTClient class (None: umqtt.simple's, loaded at the first connect);
    ``publishes`` stops the loop after that many status messages, ``attempts`` after that many
    failed attempts to connect (None: for ever, as on a board)."""

    def __init__(self, config, mqtt, sleep_ms=time.sleep_ms, publishes=None, attempts=None,
                 log=print):
        self.cfg = config
        self.MQTTClient = mqtt
        self.sleep_ms = sleep_ms
        self.left = publishes
        self.tries = attempts
        self.log = log
        self.sta = wlan.station(config.board)
        self.ssid = None
        self.backoff = 1000
        self.last_check = None  # ticks_ms of the last check with the box this app asked for
        self.published = 0
        self.ctx = None  # the TLS context, made once per config version (the CA parsed once)

    # -- the site's network
    def join(self):
        """Join the first network of the config's ``wifi`` list that takes us; each failure is
        reported by its reason (wrong passphrase, AP not found, timeout)."""
        tried = []
        for net in self.cfg.items("wifi"):
            try:
                wlan.join(self.sta, net["ssid"], net.get("password") or None)
                self.ssid = net["ssid"]
                self.log("app: joined %s" % self.ssid)
                return True
            except wlan.JoinError as e:
                tried.append(str(e))
        self.fail("wifi: " + ("; ".join(tried) or "no networks in the config"))
        return False

    # -- the broker
    def connect(self):
        """An MQTTClient connected over TLS (as the config says) with the last will set."""
        cfg = self.cfg
        host = cfg.get("mqtt.host")
        if host is None:
            raise ValueError("mqtt.host: not in the config")
        use_tls = cfg.get("mqtt.tls", False)
        if use_tls and self.ctx is None:
            self.ctx = tlsconf.context(cfg)
        if self.MQTTClient is None:  # loaded only once there is a broker to reach
            from umqtt.simple import MQTTClient

            self.MQTTClient = MQTTClient
        wrapper = _Wrapper(self.ctx) if use_tls else None
        client = self.MQTTClient(cfg.get("mqtt.client_id") or cfg.device, host,
                                 cfg.get("mqtt.port", 8883 if use_tls else 1883),
                                 cfg.get("mqtt.user"), cfg.get("mqtt.password"),
                                 cfg.get("mqtt.keepalive", 60), ssl=wrapper)
        # umqtt.simple 1.3.4 wraps with ussl.wrap_socket(sock, **ssl_params); newer releases
        # (frozen into the port's firmware) call ssl.wrap_socket(sock, server_hostname=host)
        client.ssl_params = {"context": wrapper, "server_hostname": host}
        self.wrapper = wrapper
        self.topic = TOPIC % cfg.device
        client.set_last_will(self.topic, b'{"online":false}', retain=True)
        try:
            client.connect()
        except OSError:
            self.drop(client)
            raise
        except Exception as e:  # noqa: BLE001 - umqtt: MQTTException(code), or an assert or
            # an IndexError on an answer cut short (a broker going down mid-connect)
            self.drop(client)
            code = e.args[0] if e.args and type(e.args[0]) is int else None
            if type(e).__name__ == "MQTTException" and code in _REFUSED:
                raise Refused("mqtt: %s (CONNACK %d)" % (_REFUSED[code], code)) from None
            if isinstance(e, ValueError):  # the port's tls: a peer it does not trust
                raise
            raise OSError("broker answered short (%s)" % type(e).__name__) from None
        return client

    def drop(self, client):
        """Close what a failed or broken session left open: lwIP has 10 sockets in all."""
        for sock in (client.sock, self.wrapper and self.wrapper.raw):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def status(self):
        try:
            rssi = self.sta.status("rssi")
        except (OSError, ValueError):
            rssi = None
        gc.collect()
        return json.dumps({"dev": self.cfg.device, "fw": FW_VERSION, "ver": self.cfg.version,
                           "state": self.cfg.state, "heap": gc.mem_free(), "rssi": rssi,
                           "ssid": self.ssid, "online": True})

    def publish(self, client):
        client.publish(self.topic, self.status(), retain=True)
        self.published += 1
        self.log("app: published v%d to %s" % (self.cfg.version, self.topic))
        if self.left is not None:
            self.left -= 1

    # -- errors, back-off, checks
    def fail(self, text):
        self.log("app: " + text)
        self.cfg.report(text)

    def wait(self):
        self.sleep_ms(_jitter(self.backoff))
        self.backoff = min(self.backoff * 2, _MAX_BACKOFF_MS)

    def recheck(self, force=False):
        """Ask the box for a new config (a refused credential may be an old one, and a device
        without a config needs one); after a check that succeeded, not again for _RECHECK_MS
        unless ``force``. True if a newer config was stored."""
        now = time.ticks_ms()
        if (not force and self.last_check is not None
                and time.ticks_diff(now, self.last_check) < _RECHECK_MS):
            return False
        wlan.leave(self.sta)
        self.ssid = None
        before = self.cfg.version
        gc.collect()  # the provisioning code loads again: room for it, in one piece if it can
        status = self.cfg.check(force=True)
        self.log("app: checked with the box: %s (v%d)" % (status, self.cfg.version))
        if status in ("ok", "unchanged"):
            self.last_check = now  # a box that could not be reached may be tried again soon
        if self.cfg.version > before:
            self.ctx = None  # the CA or the client certificate may have changed
            return True
        return False

    def serve(self, client, every_ms, ping_ms):
        """Publish, then keep the session alive (a ping when the line has been quiet for
        ``ping_ms``) and the status fresh until it breaks: waiting on the socket, so a broker
        that goes away is noticed at once. Under TLS the wait is on the plain socket beneath:
        the port's tls object has no descriptor to wait on, only a poll to ask over and over.
        This app reads each packet whole when woken (it subscribes to nothing), so nothing is
        left in mbedTLS's buffer unseen; an app that subscribes should ask client.sock too."""
        import select

        self.publish(client)
        poller = select.poll()
        poller.register(self.wrapper.raw if self.wrapper else client.sock, select.POLLIN)
        last = time.ticks_ms()
        while self.left is None or self.left > 0:
            if poller.poll(ping_ms):
                client.wait_msg()  # a PINGRESP; OSError(-1) once the broker has gone
            else:
                client.ping()
            if time.ticks_diff(time.ticks_ms(), last) >= every_ms:
                self.publish(client)
                last = time.ticks_ms()

    def prepare(self):
        """Make the TLS context now, before anything else takes the heap: the CA's text needs
        one block of its size (a CA bundle: 14 KB), which a heap divided by later imports may
        no longer have. A failure is left for connect() to report."""
        if self.cfg.get("mqtt.tls", False):
            try:
                self.ctx = tlsconf.context(self.cfg)
            except (ValueError, MemoryError):
                self.ctx = None

    def _attempted(self):
        """Count a failed attempt; False once ``attempts`` are used up."""
        if self.tries is None:
            return True
        self.tries -= 1
        return self.tries > 0

    def run(self):
        every_ms = int(self.cfg.get("app.status_s", 300)) * 1000
        ping_ms = max(5, int(self.cfg.get("mqtt.keepalive", 60)) // 2) * 1000
        while self.left is None or self.left > 0:
            if not self.cfg.version:  # nothing stored yet (a full AP at boot): ask until given
                if not self.recheck(force=True):
                    if not self._attempted():
                        return
                    self.wait()
                continue
            if not self.sta.isconnected() and not self.join():
                if not self._attempted():
                    return
                self.wait()
                continue
            try:
                client = self.connect()
            except Refused as e:
                self.fail(str(e))
                newer = self.recheck()
                if not self._attempted():
                    return
                if not newer:
                    self.wait()
                continue
            except (OSError, ValueError) as e:  # unreachable, TLS refused, a bad config
                self.fail("mqtt: " + _reason(e))
                if not self._attempted():
                    return
                self.wait()
                continue
            self.cfg.report(None)  # connected: nothing for the box to hear about
            self.backoff = 1000
            self.log("app: connected to %s as %s" % (self.cfg.get("mqtt.host"),
                                                     self.cfg.get("mqtt.user")))
            try:
                self.serve(client, every_ms, ping_ms)
                client.disconnect()
            except Exception as e:  # noqa: BLE001 - OSError, or umqtt on a cut-short answer
                self.log("app: connection lost: " + _reason(e))
                self.drop(client)
                self.wait()


def main(config, publishes=None, attempts=None):
    """Run the app on main.py's config reader (for ever, unless ``publishes`` or ``attempts``
    is given: see StatusApp)."""
    if config is None:
        print("app: no config reader (out of memory at boot)")
        return
    app = StatusApp(config, None, publishes=publishes, attempts=attempts)
    app.prepare()  # before the MQTT client loads (at the first connect): see prepare()
    app.run()
