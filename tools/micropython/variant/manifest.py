# Frozen modules of the ESP32-like unix variant: asyncio only, as on the board.
include("$(MPY_DIR)/extmod/asyncio")
