// A generic ESP32 module running the cfgbox firmware frozen in.
#define MICROPY_HW_BOARD_NAME "Generic ESP32 module (cfgbox)"
#define MICROPY_HW_MCU_NAME "ESP32"
