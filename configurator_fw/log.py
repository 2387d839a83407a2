# The box's console log: one line per event, each at most 160 characters, at most 10 lines per
# 10 s; what a flood would print beyond that is counted and reported as one line.
import time

_WINDOW_MS = 10000
_LINES = 10
_WIDTH = 160


class Log:
    def __init__(self, out=print):
        self.out = out
        self.start = time.ticks_ms()
        self.lines = 0
        self.dropped = 0

    def __call__(self, msg):
        now = time.ticks_ms()
        if time.ticks_diff(now, self.start) >= _WINDOW_MS:
            if self.dropped:
                self.out("cfgbox: %d log lines suppressed" % self.dropped)
            self.start, self.lines, self.dropped = now, 0, 0
        if self.lines >= _LINES:
            self.dropped += 1
            return
        self.lines += 1
        msg = str(msg)
        self.out(msg if len(msg) <= _WIDTH else msg[: _WIDTH - 3] + "...")
