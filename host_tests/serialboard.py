"""An emulated board on a serial line: its REPL on a pseudo-terminal that the real mpremote (or
esptool's serial layer, or a terminal) opens as it opens /dev/ttyUSB0.

The board is the test interpreter running host_tests/emu/emu_repl.py after its boot; this bridge
copies bytes between the pseudo-terminal and the board's stdin/stdout, as the USB-serial chip
does, and plays the rest of the hardware: a Ctrl-C while code runs becomes the port's keyboard
interrupt (SIGINT: the interpreter raises KeyboardInterrupt), not a character; a soft reset or
machine.reset() ends the board's process and the bridge boots it again (keeping its clock, as
both resets do); a power cut (exit 99) leaves it off.

    python host_tests/serialboard.py EMU_DIR DEVICE [--heap N] [--frozen] [--bundle B]
prints the pseudo-terminal's path and serves until killed (tools/demo.py and the tests).
"""
import argparse
import os
import pty
import signal
import subprocess
import sys
import threading
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upy_harness as upy  # noqa: E402

HARD_RESET, SOFT_RAW, SOFT_FRIENDLY = 75, 76, 77


class SerialBoard:
    def __init__(self, emu_dir, device, heap=upy.ESP32_HEAP, frozen=False, bundle=None,
                 log=None):
        """A board ``device`` under ``emu_dir``; a new one gets a flash as a freshly flashed
        MicroPython leaves it (an empty LittleFS but boot.py), or ``bundle`` on it."""
        self.dir, self.device, self.heap = Path(emu_dir), device, heap
        d = upy.device_dir(emu_dir, device)
        if not upy.flash_image(emu_dir, device).exists():
            d.mkdir(parents=True, exist_ok=True)
            if bundle:
                upy.provision_board(emu_dir, device, bundle, frozen)
            else:
                upy.blank_board(emu_dir, device, frozen)
        self.log = log  # a file that gets a copy of what the board prints
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.proc = None
        self.stopped = False
        self.resets = []  # exit codes of the board's runs (75, 76, 77; 99 a power cut)
        self._lock = threading.Lock()
        self._boot(cold=not (d / "booted").exists(), mode="friendly")
        (d / "booted").write_text("1")
        threading.Thread(target=self._to_board, daemon=True).start()

    def _boot(self, cold, mode):
        env = upy.board_env(self.dir, self.device, cold, {"EMU_REPL": mode})
        self.proc = subprocess.Popen(
            upy.board_cmd("import emu_repl\nemu_repl.main()", self.heap,
                          upy.is_frozen(self.dir, self.device)),
            cwd=upy.device_dir(self.dir, self.device), env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        threading.Thread(target=self._from_board, args=(self.proc,), daemon=True).start()

    def _from_board(self, proc):
        while True:
            data = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else \
                os.read(proc.stdout.fileno(), 4096)
            if not data:
                break
            if self.log:
                self.log.write(data)
                self.log.flush()
            os.write(self.master, data)
        code = proc.wait()
        with self._lock:
            if self.stopped or proc is not self.proc:
                return
            self.resets.append(code)
            if code in (HARD_RESET, SOFT_RAW, SOFT_FRIENDLY):
                self._boot(cold=False, mode="raw" if code == SOFT_RAW else "friendly")
            # anything else (a power cut, a crash): the board is off until started again

    def _running_code(self):
        f = upy.device_dir(self.dir, self.device) / "repl"
        try:
            return f.read_text() == "run"
        except OSError:
            return True

    def _to_board(self):
        while not self.stopped:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for b in data:
                with self._lock:
                    proc = self.proc
                if b == 3 and self._running_code():
                    # the port's interrupt character while code runs: KeyboardInterrupt
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
                    continue
                try:
                    proc.stdin.write(bytes((b,)))
                except (BrokenPipeError, OSError):
                    pass  # the board is resetting: a byte lost, as on the wire

    def stop(self):
        """Power the board off."""
        with self._lock:
            self.stopped = True
            proc = self.proc
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("emu_dir")
    p.add_argument("device")
    p.add_argument("--heap", type=int, default=upy.ESP32_HEAP)
    p.add_argument("--frozen", action="store_true")
    p.add_argument("--bundle")
    a = p.parse_args()
    b = SerialBoard(a.emu_dir, a.device, a.heap, a.frozen, a.bundle)
    print(b.path, flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    b.stop()


if __name__ == "__main__":
    main()
