# Host emulation — never copied to a board. The ESP32 port's `time` module (extmod/modtime.c with
# ports/esp32/modtime.c): seconds since 2000-01-01, an int; gmtime/localtime 8-tuples (no time
# zone on the board); ticks wrapping at 2**30. The clock is emu_clock's: it starts at 2000-01-01
# at every power-on and moves only with the emulated world. Frozen into the test interpreter, it
# shadows the unix port's own `time` (an extensible built-in), which stays reachable as `utime`.
import emu_clock
import utime

_EPOCH_2000 = 946684800  # the only place the emulation converts epochs: to reuse libc's gmtime
_PERIOD = 1 << 30  # MICROPY_PY_TIME_TICKS_PERIOD on a 32-bit port

ticks_add = utime.ticks_add
ticks_diff = utime.ticks_diff


def time():
    return emu_clock.board_ms() // 1000


def time_ns():
    return emu_clock.board_ms() * 1000000


def gmtime(secs=None):
    """(year, month, mday, hour, minute, second, weekday, yearday) of board seconds ``secs``."""
    if secs is None:
        secs = time()
    return tuple(utime.gmtime(int(secs) + _EPOCH_2000)[:8])


localtime = gmtime


def _days(y, m, d):
    # days from 2000-01-01 to y-m-d (proleptic Gregorian), as timeutils does
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425


def mktime(tm):
    """Board seconds of an 8-tuple (the inverse of localtime), normalising month overflow."""
    y, mo = tm[0], tm[1]
    y += (mo - 1) // 12
    mo = (mo - 1) % 12 + 1
    return ((_days(y, mo, 1) + tm[2] - 1) * 86400 + tm[3] * 3600 + tm[4] * 60 + tm[5])


def ticks_ms():
    return emu_clock.uptime_ms() & (_PERIOD - 1)


def ticks_us():
    return (emu_clock.uptime_ms() * 1000) & (_PERIOD - 1)


ticks_cpu = ticks_us


def sleep_ms(ms):
    emu_clock.advance_ms(ms)


def sleep_us(us):
    emu_clock.advance_ms(us // 1000)


def sleep(seconds):
    emu_clock.advance_ms(int(seconds * 1000))
