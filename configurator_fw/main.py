# Box entry point: bring up the AP from the store and serve the device API.
import gc

from configurator_fw import box

gc.collect()
box.run()
