# The box's audit log: what happened, for the operator (the admin page shows it newest first).
#
# Bounded and append-only: lines are appended to store/audit.log; past 8 KB the file becomes
# audit.1.log (the one before it is dropped), so the flash holds 8-16 KB of history. Events the
# network can cause at will (a failed auth, a lockout) stay in RAM only: an attacker must not
# be able to wear the flash or push the operator's history out. The newest entries of both
# kinds are kept in RAM for the page. Nothing secret is written: ids, versions, times.
FILE = "store/audit.log"
OLD = "store/audit.1.log"
MAX_FILE = 8192
KEEP = 40  # entries in RAM (the page's list)


class Audit:
    def __init__(self, board, clock):
        self.b = board
        self.clock = clock  # Unix seconds (or the box's untrusted time: shown as such)
        self.ring = []  # [time, event, detail], oldest first
        for name in (OLD, FILE):
            try:
                data = bytes(board.read(name)).decode()
            except (OSError, UnicodeError):
                continue
            for line in data.split("\n"):
                parts = line.split(" ", 2)
                if len(parts) >= 2 and parts[0].isdigit():
                    self._keep([int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""])

    def _keep(self, entry):
        self.ring.append(entry)
        if len(self.ring) > KEEP:
            self.ring.pop(0)

    def add(self, event, detail="", persist=True):
        """Record ``event`` (one word, e.g. "enrolled") with ``detail`` (short text)."""
        detail = str(detail).replace("\n", " ")[:120]
        entry = [self.clock(), event, detail]
        self._keep(entry)
        if not persist:
            return
        try:
            if self.b.size(FILE) > MAX_FILE:
                self.b.rename(FILE, OLD)
            self.b.append(FILE, ("%d %s %s\n" % tuple(entry)).encode())
        except OSError:
            pass  # a full flash loses a log line, never the box

    def newest(self, n=KEEP):
        return [{"t": e[0], "event": e[1], "detail": e[2]} for e in reversed(self.ring[-n:])]
