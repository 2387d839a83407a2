"""Files holding secrets on the host (the fleet file, the broker's keys and credentials)."""
import os


def write_private(path, data):
    """``data`` to ``path``, mode 600 from its creation on, by an atomic rename: the old file or
    the new, never half of one."""
    tmp = str(path) + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(tmp, 0o600)  # a .tmp left over from before keeps its old mode otherwise
    os.replace(tmp, path)
