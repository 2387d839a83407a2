# Host emulation — never copied to a board. The board's serial REPL as the port runs it after
# boot (ports/esp32/main.c mp_task; shared/runtime/pyexec.c): boot.py, then main.py in the
# friendly REPL mode, then the REPL on the serial line (the bridge in host_tests/serialboard.py
# gives it stdin/stdout and a pseudo-terminal to the host). The raw REPL (Ctrl-A), its raw-paste
# mode (Ctrl-E 'A' with flow control) and soft reset (Ctrl-D) as pyexec.c has them, which is
# what mpremote speaks. A soft reset or machine.reset() ends the process (exit 76/77 for a soft
# reset into the raw / friendly REPL, 75 for a hard reset) and the bridge boots the board again.
import os
import sys

import emu_registry as reg

SOFT_RAW, SOFT_FRIENDLY = 76, 77
_HARDWARE = (75, 98, 99)  # machine.reset(), a corrupt filesystem, a power cut
_WINDOW = 128  # MICROPY_REPL_STDIN_BUFFER_MAX (256) / 2
_out = sys.stdout.buffer


def _tx(s):
    _out.write(s.encode() if isinstance(s, str) else s)


def _rx():
    b = sys.stdin.buffer.read(1)
    if not b:
        sys.exit(0)  # the line closed: the board stays as it is
    return b[0]


def _state(what):
    # where the bridge looks on a Ctrl-C: "run" (code runs: the port's interrupt character
    # raises KeyboardInterrupt) or "repl" (the REPL reads: the byte is a character)
    with open(reg.path("dev", reg.device(), "repl"), "w") as f:
        f.write(what)


def _execute(code, g, eof):
    """parse_compile_execute: run ``code``; with ``eof``, \\x04 after the output and after the
    exception text (raw REPL)."""
    _state("run")
    try:
        exec(compile(code, "<stdin>", "exec"), g)  # noqa: S102 - the REPL's own job
        if eof:
            _tx(b"\x04")
    except SystemExit as e:
        if e.args and e.args[0] in _HARDWARE:
            raise  # machine.reset(), a power cut: the board itself goes down
        if eof:
            _tx(b"\x04\x04")
        _soft_reset(SOFT_RAW if eof else SOFT_FRIENDLY)  # pyexec: SystemExit is a soft reset
    except BaseException as e:  # noqa: BLE001 - printed, as the port prints it
        if eof:
            _tx(b"\x04")
        sys.print_exception(e, sys.stdout)
    finally:
        _state("repl")
    if eof:
        _tx(b"\x04")


def _soft_reset(code):
    _tx("MPY: soft reboot\r\n")
    sys.exit(code)


def raw(g):
    """pyexec_raw_repl; returns only by switching to the friendly REPL."""
    _tx("raw REPL; CTRL-B to exit\r\n")
    while True:
        line = bytearray()
        _tx(">")
        while True:
            c = _rx()
            if c == 1:  # Ctrl-A: reset the raw REPL, or raw paste after Ctrl-E 'A'
                if len(line) == 2 and line[0] == 5:
                    _paste(line[1], g)
                    line = bytearray()
                    _tx(">")
                    continue
                _tx("raw REPL; CTRL-B to exit\r\n")
                line = bytearray()
                _tx(">")
                continue
            if c == 2:  # Ctrl-B: the friendly REPL
                _tx("\r\n")
                return
            if c == 3:
                line = bytearray()
            elif c == 4:
                break
            else:
                line.append(c)
        _tx("OK")
        if not line:
            _tx("\r\n")
            _soft_reset(SOFT_RAW)
        _execute(bytes(line), g, True)


def _paste(cmd, g):
    """do_reader_stdin: raw-paste mode, the host sending within a window of _WINDOW bytes."""
    if cmd != ord("A"):
        _tx(b"R\x00")
        return
    _tx(b"R\x01")
    _tx(bytes((_WINDOW & 0xFF, _WINDOW >> 8, 1)))
    code = bytearray()
    remain = _WINDOW
    while True:
        c = _rx()
        if c in (3, 4):
            _tx(b"\x04")  # end, to the host
            if c == 3:
                _tx(b"\x04")
                _tx("Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n\x04")
                return
            break
        code.append(c)
        remain -= 1
        if remain == 0:
            _tx(b"\x01")
            remain = _WINDOW
    _execute(bytes(code), g, True)


def friendly(g):
    """pyexec_friendly_repl, short of line editing: returns by switching to the raw REPL."""
    _tx("MicroPython %s on 2025-04-15; Generic ESP32 module with ESP32\r\n"
        "Type \"help()\" for more information.\r\n" % ".".join(
            str(x) for x in sys.implementation.version[:3]))
    while True:
        _tx(">>> ")
        line = bytearray()
        while True:
            c = _rx()
            if c == 1:
                _tx("\r\n")
                return
            if c == 2:
                _tx("\r\n")
                break
            if c == 3:
                _tx("\r\n")
                line = None
                break
            if c == 4:
                _tx("\r\n")
                _soft_reset(SOFT_FRIENDLY)
            if c in (13, 10):
                _tx("\r\n")
                break
            line.append(c)
            _tx(bytes((c,)))  # echo
        if line:
            _state("run")
            try:
                try:
                    r = eval(bytes(line), g)  # noqa: S307 - an expression's value is shown
                    if r is not None:
                        _tx(repr(r) + "\r\n")
                except SyntaxError:
                    exec(bytes(line), g)  # noqa: S102
            except BaseException as e:  # noqa: BLE001
                sys.print_exception(e, sys.stdout)
            finally:
                _state("repl")


def main():
    """After emu_boot.power_on(): boot.py, main.py unless the soft reset came from the raw
    REPL (EMU_REPL=raw), then the REPL for ever."""
    import emu_boot

    mode = os.getenv("EMU_REPL") or "friendly"
    _state("run")
    try:
        emu_boot.run_main(main=mode == "friendly")
    except KeyboardInterrupt as e:
        sys.print_exception(e, sys.stdout)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - main.py failed: the REPL follows, as on a board
        sys.print_exception(e, sys.stdout)
    _state("repl")
    g = {"__name__": "__main__"}
    while True:
        if mode == "raw":
            raw(g)
            mode = "friendly"
        else:
            friendly(g)
            mode = "raw"
