"""Fetch one pinned source release from the package index pip uses and unpack files of it.

For MicroPython packages on the index whose sdists pip cannot install (micropython-lib's, with
no setup.py): the release is found on the index's simple page (PEP 503) by its exact file name,
checked against its pinned SHA-256, and only the named files are taken out. Nothing else runs.

    python tools/vendor.py NAME VERSION SHA256 OUTDIR FILE...
"""
import hashlib
import html.parser
import io
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request


def index_url():
    """The index pip is set to use here (its configuration, else pip's own default)."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                       capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip()
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href")


def fetch(name, version, sha256):
    """The sdist's bytes, checked against ``sha256``."""
    base = index_url().rstrip("/") + "/"
    project = re.sub(r"[-_.]+", "-", name).lower()
    page_url = urllib.parse.urljoin(base, project + "/")
    with urllib.request.urlopen(page_url, timeout=60) as r:  # noqa: S310 - pip's index
        parser = _Links()
        parser.feed(r.read().decode())
    want = "%s-%s.tar.gz" % (name, version)
    for href in parser.links:
        url = urllib.parse.urljoin(page_url, href)
        if urllib.parse.urlparse(url).path.rsplit("/", 1)[-1] == want:
            break
    else:
        sys.exit("vendor: %s is not on the index (%s)" % (want, page_url))
    with urllib.request.urlopen(url.split("#")[0], timeout=120) as r:  # noqa: S310
        data = r.read()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        sys.exit("vendor: %s has SHA-256 %s, pinned %s: refusing it" % (want, got, sha256))
    return data


def main(argv):
    name, version, sha256, outdir, *files = argv
    data = fetch(name, version, sha256)
    top = "%s-%s/" % (name, version)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for rel in files:
            member = tar.extractfile(top + rel)
            dest = os.path.join(outdir, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest + ".tmp", "wb") as f:
                f.write(member.read())
            os.replace(dest + ".tmp", dest)
            print("vendor: %s %s: %s" % (name, version, rel))


if __name__ == "__main__":
    main(sys.argv[1:])
