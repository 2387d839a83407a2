# The port's own frozen modules, then the box and the client (their manifests need `make build`
# first: the box's takes microdot from build/vendor). CFGBOX_REPO is set by build.sh.
include("$(PORT_DIR)/boards/manifest.py")
include("$(CFGBOX_REPO)/configurator_fw/manifest.py")
include("$(CFGBOX_REPO)/client_fw/manifest.py")
