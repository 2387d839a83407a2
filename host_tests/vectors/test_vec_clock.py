# The one board-clock-to-Unix conversion: ESP32 counts from 2000-01-01, the unix port from 1970.
import sys
import time
import unittest

from shared import clock


def _gmtime_2000(secs):
    return (2000, 1, 1, 0, 0, 0, 5, 1) if secs == 0 else None


class TestClock(unittest.TestCase):
    def test_esp32_epoch(self):
        off = clock.epoch_offset(_gmtime_2000)
        self.assertEqual(off, 946684800)
        # 2026-11-21 00:00:00 UTC as an ESP32 time.time() (an int) and as Unix time
        self.assertEqual(clock.to_unix(848534400, off), 1795219200)
        self.assertEqual(clock.from_unix(1795219200, off), 848534400)
        self.assertEqual(clock.to_unix(0, off), 946684800)

    def test_unix_epoch_and_float_time(self):
        self.assertEqual(clock.epoch_offset(lambda s: (1970, 1, 1, 0, 0, 0, 3, 1)), 0)
        self.assertEqual(clock.to_unix(1795219200.75, 0), 1795219200)
        self.assertTrue(isinstance(clock.to_unix(1.5, 0), int))

    def test_unknown_epoch_refused(self):
        self.assertRaises(ValueError, clock.epoch_offset, lambda s: (1980, 1, 1, 0, 0, 0, 0, 1))

    def test_this_interpreter(self):
        # CPython counts from 1970; our MicroPython is the ESP32-like build whose `time` is the
        # board's (host_tests/emu/time.py), counting from 2000: the conversion must see which
        if sys.implementation.name == "micropython":
            self.assertEqual(clock.epoch_offset(), 946684800)
            self.assertEqual(time.gmtime(0)[:3], (2000, 1, 1))
            self.assertEqual(clock.unix_now(), time.time() + 946684800)
        else:
            self.assertEqual(clock.epoch_offset(), 0)
            now = clock.unix_now()
            self.assertTrue(abs(now - time.time()) < 2)
            self.assertTrue(now > 1735689600)  # after 2025-01-01: not an epoch-2000 reading
