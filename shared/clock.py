# Board clock -> Unix time: the one place that knows ESP32 counts from 2000, unix from 1970.
import time

EPOCH_2000 = 946684800  # seconds from 1970-01-01 to 2000-01-01 (UTC)


def epoch_offset(gmtime=time.gmtime):
    """Seconds to add to the board's ``time.time()`` to get Unix time.

    0 where the port counts from 1970 (unix port, CPython), 946684800 where it counts from
    2000 (ESP32 port), read from where the port's epoch falls rather than from the port name.
    """
    year = gmtime(0)[0]
    if year == 1970:
        return 0
    if year == 2000:
        return EPOCH_2000
    raise ValueError("unknown board epoch %d" % year)


def to_unix(board_seconds, offset):
    """Board seconds (int on the ESP32, float on unix) -> integer Unix seconds."""
    return int(board_seconds) + offset


def from_unix(unix_seconds, offset):
    """Integer Unix seconds -> the board's own seconds, e.g. to set its RTC."""
    return int(unix_seconds) - offset


_OFFSET = epoch_offset()


def unix_now():
    """The board clock now, as integer Unix seconds."""
    return to_unix(time.time(), _OFFSET)
