"""The fleet's MQTT broker material, made on the host with `cryptography` and the host's CSPRNG:
a broker CA, the broker's server certificate, a credential for each device (a password, and a
client certificate signed by the CA with the device id as its identity where asked for), and a
mosquitto configuration whose password file and ACL confine each device to its own topics.

Everything lands in one directory of mode 700, every file mode 600; the password file is hashed
by `mosquitto_passwd -U` from a private file, so no secret is ever on a command line. What each
device needs goes into its config (the fleet's defaults and its overrides), never elsewhere.
"""
import datetime
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.private import write_private as _write_private

MONITOR = "cfgbox-monitor"  # the operator's read-only view of every device's topics
TOPIC = "devices/%s"  # a device's own topics: devices/<id>/...; its status at .../status
# An ESP32 starts at 2000-01-01 on every power-on and mbedTLS checks dates against that clock
# (ports/esp32/main.c); a device that has not yet checked with the box this power-on must still
# accept the broker, so the fleet's certificates are valid from 2000-01-01.
NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2099, 12, 31, tzinfo=datetime.timezone.utc)


class BrokerError(Exception):
    """A clear message for the operator."""


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _cert(subject, key, issuer, issuer_key, ca=False, dns=None, client=False):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOT_BEFORE)
         .not_valid_after(NOT_AFTER)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            False)
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), False)
    return b.sign(issuer_key, hashes.SHA256())


class Broker:
    """The broker directory ``root``: ca.pem/ca.key, server.pem/server.key, passwd, acl,
    mosquitto.conf, monitor.json (the monitor's credential; monitor.pem/.key with client
    certificates) and broker.json (host, port)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, name):
        return self.root / name

    @property
    def settings(self):
        return json.loads(self.path("broker.json").read_text())

    def exists(self):
        return self.path("broker.json").exists()

    def create(self, host, port, bind="127.0.0.1"):
        """A new CA and server certificate for ``host`` (the name devices connect to)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("cfgbox fleet broker CA", ca_key,
                   x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                 "cfgbox fleet broker CA")]), ca_key, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        server = _cert(host, key, ca.subject, ca_key, dns=host)
        _write_private(self.path("ca.key"), _pem_key(ca_key))
        _write_private(self.path("ca.pem"), _pem_cert(ca))
        _write_private(self.path("server.key"), _pem_key(key))
        _write_private(self.path("server.pem"), _pem_cert(server) + _pem_cert(ca))
        _write_private(self.path("monitor.json"),
                       json.dumps({"user": MONITOR, "password": secrets.token_urlsafe(24)}))
        _write_private(self.path("broker.json"),
                       json.dumps({"host": host, "port": port, "bind": bind}))

    def ca_pem(self):
        return self.path("ca.pem").read_text()

    def client_cert(self, dev):
        """(certificate PEM, key PEM) for ``dev``, signed by the broker CA, CN = the id."""
        ca_key = serialization.load_pem_private_key(self.path("ca.key").read_bytes(), None)
        ca = x509.load_pem_x509_certificate(self.path("ca.pem").read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        return _pem_cert(_cert(dev, key, ca.subject, ca_key, client=True)), _pem_key(key)

    def write(self, passwords, client_certs=False):
        """The password file (hashed), ACL and mosquitto.conf for ``passwords`` ({user: pw}
        of every device the broker takes, revoked ones left out)."""
        if not shutil.which("mosquitto_passwd"):
            raise BrokerError("mosquitto_passwd not found: install Debian's mosquitto "
                              "(make setup does)")
        monitor = json.loads(self.path("monitor.json").read_text())
        users = dict(passwords, **{monitor["user"]: monitor["password"]})
        plain = self.path("passwd.new")
        _write_private(plain, "".join("%s:%s\n" % (u, pw) for u, pw in sorted(users.items())))
        r = subprocess.run(["mosquitto_passwd", "-U", str(plain)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            plain.unlink()
            raise BrokerError("mosquitto_passwd failed: %s" % (r.stderr or r.stdout).strip())
        os.replace(plain, self.path("passwd"))
        if client_certs and not self.path("monitor.pem").exists():
            # the broker then asks every client for a certificate: the monitor's too
            cert, key = self.client_cert(monitor["user"])
            _write_private(self.path("monitor.key"), key)
            _write_private(self.path("monitor.pem"), cert)
        _write_private(self.path("acl"),
                       "# each device reads and writes its own topics only\n"
                       "pattern readwrite %s/#\n\nuser %s\ntopic read %s/#\n"
                       % (TOPIC % "%u", monitor["user"], TOPIC % "+"))
        self.write_conf(client_certs)

    def write_conf(self, client_certs=False, user=None, log=None):
        s = self.settings
        lines = [
            "# made by `fleet broker`: TLS only, every client authenticated, ACL per device",
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",
            "log_dest file %s" % log if log else "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
            "password_file %s" % self.path("passwd"),
            "acl_file %s" % self.path("acl"),
            "listener %d %s" % (s["port"], s["bind"]),
            "cafile %s" % self.path("ca.pem"),
            "certfile %s" % self.path("server.pem"),
            "keyfile %s" % self.path("server.key"),
            "tls_version tlsv1.2",
        ]
        if client_certs:
            lines += ["require_certificate true", "use_identity_as_username true"]
        if user:
            lines.insert(1, "user %s" % user)  # run as this user (root would switch away)
        _write_private(self.path("mosquitto.conf"), "\n".join(lines) + "\n")

    def monitor(self):
        return json.loads(self.path("monitor.json").read_text())
