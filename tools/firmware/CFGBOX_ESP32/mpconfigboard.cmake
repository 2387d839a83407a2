# A generic ESP32 with the box's and the client's code frozen in (tools/firmware/build.sh).
# The port's own defaults first (ports/esp32/boards/ESP32_GENERIC at v1.25.0), ours last.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
