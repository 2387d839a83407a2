# Frozen modules of the ESP32-like unix variant: asyncio, as on the board (with its Python task
# queue: see mpconfigvariant.h), and the host emulation of the board's hardware (host_tests/emu,
# copied here by build.sh), which is C on a real board: frozen, its code takes none of the
# firmware's heap. Test interpreter only: never a board's.
include("$(MPY_DIR)/extmod/asyncio")
freeze("$(MPY_DIR)/extmod", "asyncio/task.py")
freeze("emu")
