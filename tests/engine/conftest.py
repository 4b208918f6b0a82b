"""Shared simulated data for the engine tests (module-scoped: simulations cost ~0.3 s)."""

from pathlib import Path

import pytest

from napari_sim_ml.engine.simulate import simulate_acquisition

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    return DATA


@pytest.fixture(scope="session")
def sim_100():
    return [simulate_acquisition("filaments", 256, photons=100, seed=s) for s in range(3)]


@pytest.fixture(scope="session")
def sim_3beam_100():
    return [simulate_acquisition("filaments", 256, n_phases=5, photons=100, seed=s) for s in range(2)]
