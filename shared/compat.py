# The one compatibility shim: names that differ between MicroPython and CPython.
import time

try:
    from micropython import const
except ImportError:  # pragma: no cover - CPython

    def const(x):
        return x


try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
except AttributeError:  # pragma: no cover - CPython

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b
