"""Shared simulated data for the engine tests (module-scoped: simulations cost ~0.3 s)."""

import pytest

from napari_sim_ml.engine.simulate import simulate_acquisition

# ``data_dir`` (../shared/data, skipped visibly when absent) is in tests/conftest.py


@pytest.fixture(scope="session")
def sim_100():
    return [simulate_acquisition("filaments", 256, photons=100, seed=s) for s in range(3)]


@pytest.fixture(scope="session")
def sim_3beam_100():
    return [simulate_acquisition("filaments", 256, n_phases=5, photons=100, seed=s) for s in range(2)]
