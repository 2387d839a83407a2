# Fixtures shared by several test modules.
import pytest


@pytest.fixture(scope="session")
def thousand(tmp_path_factory):
    """A box with 1,000 devices enrolled, each with overrides (built once: about a minute): the
    flash-operation count and the admin page at fleet size use it. Tests that use it leave it
    with 1,000 devices and the box stopped; they may record statuses of devices other than the
    probe (whose exchanges the flash count measures)."""
    from flashcount import fleet_of

    return fleet_of(tmp_path_factory.mktemp("thousand"), 1000)
