// Host emulation, test interpreter only: mbedTLS as the ESP32 port runs it. The unix port's own
// configuration, with the changes that make TLS behave and cost as on a board:
// - PEM is parsed (ESP-IDF's default CONFIG_MBEDTLS_PEM_PARSE_C=y, which the port keeps; the
//   unix port's own configuration reads DER only);
// - memory comes from the C heap, as on an ESP32 (the IDF heap that WiFi and lwIP share) and on
//   the unix port, but through emutls.c, which counts it (in use, peak) and can cap it;
// - certificate dates are checked against the board's clock, as ports/esp32/main.c sets it
//   (platform_mbedtls_time: the RTC since 2000 plus 946684800), not the host's.
#ifndef MICROPY_INCLUDED_MBEDTLS_CONFIG_ESP32LIKE_H
#define MICROPY_INCLUDED_MBEDTLS_CONFIG_ESP32LIKE_H

#include "mbedtls/mbedtls_config_port.h"

#include <stddef.h>
#include <time.h>

void *emutls_calloc(size_t nmemb, size_t size);
void emutls_free(void *ptr);
time_t emutls_time(time_t *timer);

#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_STD_CALLOC emutls_calloc
#define MBEDTLS_PLATFORM_STD_FREE emutls_free
#define MBEDTLS_PLATFORM_TIME_MACRO emutls_time

#endif
