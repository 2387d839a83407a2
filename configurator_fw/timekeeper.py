# The box's trusted time (docs/PROTOCOL.md s.4): who may set the clock and when the box trusts it.
#
# An ESP32 without a battery wakes at 2000-01-01 on every power-on. The box trusts its clock only
# once a trusted source has set it since the last power-on: the operator (admin.set_time, later
# the admin page) or a DS3231 RTC module on I2C whose oscillator never stopped. A marker in RTC
# memory carries that trust across a software reset (the ESP32's clock keeps running through one,
# and RTC memory is cleared only by a power-on). The persisted floor is never a source: it only
# refuses a clock that went back behind a time the box already accepted codes at.
from shared import clock

EARLIEST = 1735689600  # 2025-01-01: no trusted source reads earlier than this
# the latest time the box's clock is set to: 2036-01-01, two years before a 32-bit time_t runs
# out (2^31 - 1 Unix seconds: the emulated board's; the port's time.time() is a 32-bit int of
# seconds since 2000, good to 2068), so a clock set to it keeps running
LATEST = 2082758400
FAR = 400 * 86400  # a time this far past the last one the box knew is set only when confirmed
_MARK = b"cfgbox:time-set"
_DS3231 = 0x68


class ClockError(ValueError):
    """A time the box refuses to set; the message says what to do."""


class Behind(ClockError):
    """A time before one the box already accepted (its floor): never set."""


class FarAhead(ClockError):
    """A time over FAR past the last one the box knew: set only when the operator confirms it
    (a computer whose clock runs years ahead would otherwise raise the box's floor for good,
    and every device's last step with it)."""


def _day(unix):
    import time

    return "%04d-%02d-%02d" % time.gmtime(clock.from_unix(unix, clock.epoch_offset()))[:3]


def _bcd(v):
    return (v // 10) << 4 | v % 10


def _unbcd(b):
    return (b >> 4) * 10 + (b & 0x0F)


def ds3231_read(i2c):
    """Unix seconds from a DS3231, or None if there is none or its time is not valid."""
    try:
        if _DS3231 not in i2c.scan():
            return None
        r = i2c.readfrom_mem(_DS3231, 0, 7)
        status = i2c.readfrom_mem(_DS3231, 0x0F, 1)[0]
    except OSError:
        return None
    if status & 0x80:  # oscillator stopped (no battery, never set): its time means nothing
        return None
    import time

    tm = (2000 + _unbcd(r[6]), _unbcd(r[5] & 0x1F), _unbcd(r[4]), _unbcd(r[2] & 0x3F),
          _unbcd(r[1]), _unbcd(r[0] & 0x7F), 0, 0)
    unix = clock.to_unix(time.mktime(tm), clock.epoch_offset())
    return unix if unix >= EARLIEST else None


def ds3231_write(i2c, unix):
    """Set a DS3231 (if fitted) to ``unix`` seconds and clear its oscillator-stop flag."""
    import time

    try:
        if _DS3231 not in i2c.scan():
            return False
        tm = time.gmtime(clock.from_unix(unix, clock.epoch_offset()))
        i2c.writeto_mem(_DS3231, 0, bytes((_bcd(tm[5]), _bcd(tm[4]), _bcd(tm[3]), tm[6] + 1,
                                           _bcd(tm[2]), _bcd(tm[1]), _bcd(tm[0] % 100))))
        i2c.writeto_mem(_DS3231, 0x0F, b"\x00")
    except OSError:
        return False
    return True


def at_boot(board, floor):
    """(trusted, why) for the clock at boot; sets the board clock from a DS3231 if one is valid."""
    source = None
    if board.rtc_memory() == _MARK:
        source = "clock set before the last reset"
    else:
        unix = ds3231_read(board.i2c())
        if unix is not None:
            board.set_unix_time(unix)
            source = "clock from the DS3231"
    if source is None:
        return False, "clock not set since power-on: run admin.set_time() (README)"
    if board.unix_now() < floor:
        board.rtc_memory(b"")
        return False, "clock behind the last accepted time: set it again with admin.set_time()"
    board.rtc_memory(_MARK)
    return True, source


def set_time(board, unix, floor):
    """Set the board clock from a trusted source (the operator, in UTC). Returns what was set."""
    if not isinstance(unix, int) or not EARLIEST <= unix <= LATEST:
        raise ClockError("give the time as Unix seconds in UTC, e.g. $(date -u +%s)")
    if unix < floor:
        raise Behind("%d is before the last time this box accepted (%d): check the clock"
                         % (unix, floor))
    board.set_unix_time(unix)
    rtc = ds3231_write(board.i2c(), unix)
    board.rtc_memory(_MARK)
    return "clock set to %d (UTC)%s" % (unix, "; DS3231 set too" if rtc else "")


def operator_set(board, store, unix, floor=None, confirmed=False):
    """The operator sets the clock (admin page, admin.set_time): set it and persist ``unix`` as
    the store's floor. ``floor`` if the caller has it already (it reads every device record).
    A time over FAR past a floor the box has raises FarAhead unless ``confirmed``."""
    floor = store.floor() if floor is None else floor
    if floor and isinstance(unix, int) and unix > floor + FAR and not confirmed:
        raise FarAhead("this computer's clock says %s, %d days after the last time the box "
                       "knew (%s): set it only if that is right" % (
                           _day(unix), (unix - floor) // 86400, _day(floor)))
    why = set_time(board, unix, floor)
    store.set_floor(unix)
    return why
