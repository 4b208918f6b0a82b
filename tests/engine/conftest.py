"""Shared simulated data for the engine tests (session-scoped: simulations cost ~0.3 s), and torch's thread count
kept for tests that change it."""

import pytest

from napari_sim_ml.engine.simulate import simulate_acquisition

# ``data_dir`` (../shared/data, skipped visibly when absent) is in tests/conftest.py


@pytest.fixture(scope="session")
def sim_100():
    return [simulate_acquisition("filaments", 256, photons=100, seed=s) for s in range(3)]


@pytest.fixture(scope="session")
def sim_3beam_100():
    return [simulate_acquisition("filaments", 256, n_phases=5, photons=100, seed=s) for s in range(2)]


@pytest.fixture
def other_thread_count():
    """Run with a torch thread count no learned method asks for (3); restore the process's afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)
