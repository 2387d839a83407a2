# Test harness: the site around the fleet. The site's WiFi (an emulated AP no board runs), a real
# broker (Debian's mosquitto on the site's loopback address, configured from the fleet's broker
# material: tools/broker.py) and a monitor subscribed to every device's topics (paho-mqtt).
import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

import upy_harness as upy
from tools.broker import Broker

SITE_SSID = "plant-floor"
SITE_KEY = "site wifi key 1"
SITE_NET = "127.0.8"  # the site's network (10.0.8.x on a real site)
BROKER_IP = SITE_NET + ".1"
BROKER_NAME = "mqtt.plant.example"  # what the devices' config names; the site's DNS answers it


def free_port(ip=BROKER_IP):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mosquitto_bin():
    path = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(path):
        raise RuntimeError("mosquitto is not installed (`make setup` installs Debian's)")
    return path


class Mosquitto:
    """mosquitto -c the broker directory's mosquitto.conf, as this user, logging to a file."""

    def __init__(self, broker):
        self.broker = broker
        self.proc = None
        self.log = broker.root / "mosquitto.log"

    def start(self, client_certs=False):
        self.broker.write_conf(client_certs, user=getpass.getuser(), log=self.log)
        s = self.broker.settings
        self._log = open(self.log.with_suffix(".out"), "a")
        self.proc = subprocess.Popen([mosquitto_bin(), "-c", str(self.broker.path(
            "mosquitto.conf"))], stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 120  # a hang guard only
        while time.monotonic() < end:
            try:
                socket.create_connection((s["bind"], s["port"]), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.025)  # host time, only to wait for the broker to listen
        self.stop()
        raise RuntimeError("mosquitto did not start: " + self.log.read_text())

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self._log.close()
            self.proc = None

    def restart(self):
        """Stop and start again: every client is cut off and must reconnect (a config change
        of the broker's credentials takes effect for everyone)."""
        self.stop()
        return self.start()

    def log_text(self):
        return self.log.read_text() if self.log.exists() else ""


class Monitor:
    """The operator's view: subscribed to devices/+/status with the monitor credential, the
    broker verified against the fleet's broker CA (by CA; the name is the devices' to check:
    this side connects by address)."""

    def __init__(self, broker):
        s, m = broker.settings, broker.monitor()
        self.messages = []  # (host monotonic time, topic, payload dict)
        self.cond = threading.Condition()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="monitor-%d" % os.getpid())
        c.username_pw_set(m["user"], m["password"])
        cert = broker.path("monitor.pem")
        c.tls_set(ca_certs=str(broker.path("ca.pem")),
                  certfile=str(cert) if cert.exists() else None,
                  keyfile=str(broker.path("monitor.key")) if cert.exists() else None)
        c.tls_insecure_set(True)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("devices/+/status", qos=1)
        c.on_message = self._message
        c.connect(s["bind"], s["port"], keepalive=30)
        c.loop_start()
        self.client = c

    def _message(self, client, userdata, msg):
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"raw": msg.payload.decode(errors="replace")}
        with self.cond:
            self.messages.append((time.monotonic(), msg.topic, body))
            self.cond.notify_all()

    def wait_for(self, pred, timeout=120):
        """The first message ``pred(topic, body)`` accepts, waiting up to ``timeout`` s of host
        time (a hang guard only); None if none came."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for _, topic, body in self.messages:
                    if pred(topic, body):
                        return body
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def connack(broker, user, password):
    """The CONNACK code mosquitto answers ``user``/``password`` with, in MQTT 3.1.1's terms
    (0 accepted, 4 bad user name or password, 5 not authorized); None if none came."""
    got = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="probe-%s-%d" % (
        user, os.getpid()))
    c.username_pw_set(user, password)
    c.tls_set(ca_certs=str(broker.path("ca.pem")))
    c.tls_insecure_set(True)
    c.on_connect = lambda cl, u, fl, rc, p: got.append(rc.value)
    s = broker.settings
    c.connect(s["bind"], s["port"])
    c.loop_start()
    end = time.monotonic() + 120  # a hang guard only
    while not got and time.monotonic() < end:
        time.sleep(0.02)
    c.loop_stop()
    c.disconnect()
    return {0: 0, 134: 4, 135: 5}.get(got[0], got[0]) if got else None  # MQTT 5 reason codes


class SiteWorld:
    """The site for a fleet (host_tests/fleet.Fleet): its WiFi up, a broker made for it and
    started, each device given its own credential in its overrides, and the defaults naming
    the site's network and the broker (with its CA)."""

    def __init__(self, fleet, devices, extra_defaults=None, client_certs=False, ca_extra="",
                 aliases=()):
        """``aliases``: more names the site's DNS answers with the broker's address."""
        self.fleet = fleet
        self.site = upy.Site(fleet.dir, SITE_SSID, SITE_KEY, SITE_NET,
                             dict({BROKER_NAME: BROKER_IP}, **{a: BROKER_IP for a in aliases}))
        self.site.up()
        self.broker = Broker(Path(fleet.dir) / "broker")
        self.broker.create(BROKER_NAME, free_port(), BROKER_IP)
        self.client_certs = client_certs
        self.passwords = {}
        defaults = {"wifi": [{"ssid": SITE_SSID, "password": SITE_KEY}],
                    "mqtt": {"host": BROKER_NAME, "port": self.broker.settings["port"],
                             "tls": True, "keepalive": 60,
                             "ca": self.broker.ca_pem() + ca_extra}}
        defaults.update(extra_defaults or {})
        fleet.set_defaults(defaults)
        self.defaults = defaults
        for dev in devices:
            self.give_credential(dev)
        self.broker.write(self.passwords, client_certs)
        self.mosquitto = Mosquitto(self.broker).start(client_certs)
        self.monitor = Monitor(self.broker)

    def give_credential(self, dev, password=None):
        import secrets

        pw = password or secrets.token_urlsafe(24)
        m = {"user": dev, "password": pw}
        if self.client_certs:
            m["cert"], m["key"] = self.broker.client_cert(dev)
        self.fleet.set_overrides(dev, {"mqtt": m})
        self.passwords[dev] = pw
        return pw

    def close(self):
        try:
            self.monitor.close()
        finally:
            self.mosquitto.stop()
            self.site.down()
