# Host emulation — never copied to a board. The emulated world's clock and each board's own clock.
#
# The world clock is a file under $EMU_DIR that the test controls ("origin elapsed_ms": the Unix
# second at which the world started and the milliseconds since). It never reads the host's wall
# clock: time moves only when the test advances it or a board sleeps (time.sleep* advances the
# world by the time slept, as waiting does, and gives the other boards' processes a hundredth of
# it in host time to make progress meanwhile; no outcome depends on that host time). A board's
# uptime is the world time since its power-on; its clock (time.time(), machine.RTC) counts
# seconds from 2000-01-01 as the ESP32 port does, starting at 0 at every power-on: there is no
# battery. Like the ESP32's RTC timer, the clock and RTC.memory() survive a software reset
# (machine.reset(), a new run after one) but not a power-on, which emu_boot decides.
import emu_registry as reg
import utime

_W = 32  # the clock file: "%015d %015d\n" (origin Unix seconds, elapsed ms), written in place
_buf = bytearray(_W)
_f = None
_boot_ms = 0  # world elapsed ms at this board's power-on
_base_ms = 0  # board ms (since 2000-01-01) at uptime 0; set by the RTC
_memory = b""  # RTC.memory()
cold = True  # this run began with a power-on


def _file():
    global _f
    if _f is None:
        _f = open(reg.path("clock"), "r+b")
    return _f


def _read():
    f = _file()
    f.seek(0)
    if f.readinto(_buf) != _W:
        raise OSError("emulation clock file is torn: " + reg.path("clock"))
    return _buf


def world_ms():
    """Milliseconds since the world's origin (a small int for 12 days: no heap)."""
    return int(memoryview(_read())[16:31])


def world_unix():
    """The world's real Unix time in seconds: what a battery-backed clock (DS3231) would read."""
    buf = _read()
    return int(memoryview(buf)[0:15]) + int(memoryview(buf)[16:31]) // 1000


def advance_ms(ms):
    """Move the world on by ``ms``: a board that sleeps lets time pass for every board."""
    if ms <= 0:
        return
    with reg.Lock():
        buf = _read()
        origin = int(memoryview(buf)[0:15])
        now = int(memoryview(buf)[16:31]) + ms
        f = _file()
        f.seek(0)
        f.write(b"%015d %015d\n" % (origin, now))
        f.flush()
    # let the other boards' processes run: a hundredth of the time, in the host's, bounded
    utime.sleep_ms(min(ms // 100, 50))


def uptime_ms():
    return world_ms() - _boot_ms


def board_ms():
    """The board clock in ms since 2000-01-01 (the ESP32 port's epoch)."""
    return _base_ms + uptime_ms()


def _state_file():
    return reg.ensure_dir("dev", reg.device()) + "/rtc.json"


def set_board_ms(ms):
    """Set the board clock (RTC.datetime(), settimeofday on the port)."""
    global _base_ms
    _base_ms = ms - uptime_ms()
    _save()


def memory(data=None):
    global _memory
    if data is None:
        return _memory
    if len(data) > 2048:  # MICROPY_HW_RTC_USER_MEM_MAX
        raise ValueError("buffer too long")
    _memory = bytes(data)
    _save()
    return None


def _save():
    # what survives a software reset: the clock (as world-relative) and RTC memory
    reg.write_json(_state_file(), {"world_at_zero": world_ms() - board_ms(),
                                   "memory": _memory.hex()})


def power_on(cold_start):
    """Start the board's clock: from 2000-01-01 on a power-on (``cold_start``), else as it was."""
    global _boot_ms, _base_ms, _memory, cold
    cold = cold_start
    _boot_ms = world_ms()
    state = None if cold_start else reg.read_json(_state_file())
    if state is None:
        # the RTC counts from 2000-01-01 since this power-on, and keeps counting through
        # software resets (what _save records), as the port's RTC does
        _base_ms = 0
        _memory = b""
        _save()
    else:
        # the board clock kept running through the reset: board_ms = world - world_at_zero
        _base_ms = _boot_ms - state["world_at_zero"]
        _memory = bytes.fromhex(state["memory"])
