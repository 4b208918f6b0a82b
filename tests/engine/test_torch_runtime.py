"""The one torch runtime of the learned methods: device names, the load-aware thread count, and that
the PINN fit, the denoiser's training and its application leave torch's thread count as they found it
(``other_thread_count``, torch on 3 threads and restored afterwards, is in tests/engine/conftest.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_sim_ml.engine import torch_runtime as rt  # noqa: E402
from napari_sim_ml.engine.errors import SimInputError  # noqa: E402
from napari_sim_ml.engine.parameters import Optics  # noqa: E402
from napari_sim_ml.engine.simulate import random_parameters  # noqa: E402

OPTICS = Optics(1.4, 525.0, 0.08)
PARAMS = random_parameters(OPTICS, 3, 3, 1, rng=np.random.default_rng(3))


def machine(monkeypatch, cores: int, load: float) -> None:
    """Pretend this process may use ``cores`` cores and the 1-minute load average is ``load``."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load), raising=False)


@pytest.mark.parametrize(("cores", "load", "expected"), [
    (8, 0.0, 8), (8, 3.9, 8), (8, 4.0, 1), (8, 7.5, 1), (2, 0.5, 2), (2, 1.0, 1), (1, 5.0, 1)])
def test_unrequested_threads_are_every_core_on_a_quiet_machine_and_one_on_a_loaded_one(
        monkeypatch, cores, load, expected):
    machine(monkeypatch, cores, load)
    assert rt.cpu_threads(None) == expected
    assert rt.cpu_threads(0) == expected


def test_a_requested_count_is_used_whatever_the_load(monkeypatch):
    machine(monkeypatch, 8, 100.0)
    assert rt.cpu_threads(6) == 6
    machine(monkeypatch, 2, 0.0)
    assert rt.cpu_threads(4) == 4  # more than the cores: the user's choice


def test_platforms_without_affinity_or_load_average_fall_back_to_every_core(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)

    def no_load():
        raise OSError("load average unobtainable")

    monkeypatch.setattr(os, "getloadavg", no_load, raising=False)
    assert rt.usable_cores() == 6
    assert rt.cpu_threads(None) == 6


def test_device_names():
    assert rt.select_device("cpu").type == "cpu"
    assert rt.select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SimInputError, match="unknown device 'gpu'"):
        rt.select_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(SimInputError, match="no CUDA GPU"):
            rt.select_device("cuda")


def test_the_runtime_applies_the_load_aware_default_and_restores(monkeypatch, other_thread_count):
    machine(monkeypatch, 2, 0.0)
    with rt.torch_runtime("cpu", None):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == other_thread_count
    machine(monkeypatch, 2, 1.5)
    with rt.torch_runtime("cpu", None):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == other_thread_count


def test_the_pinn_and_the_denoiser_use_the_one_runtime():
    from napari_sim_ml.engine.denoise import apply, train
    from napari_sim_ml.engine.pinn import fit, torch_runtime

    assert torch_runtime is rt.torch_runtime and fit.torch_runtime is rt.torch_runtime
    assert train.cpu_threads is rt.cpu_threads and train.select_device is rt.select_device
    assert not hasattr(apply, "cpu_threads")  # imported inside its functions


def test_training_and_denoising_set_the_default_threads_and_restore_them(monkeypatch, other_thread_count):
    from napari_sim_ml.engine.denoise import apply, simulated_set
    from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_frames
    from napari_sim_ml.engine.denoise.train import TrainSettings, train_steps

    machine(monkeypatch, 2, 0.0)  # a quiet 2-core machine: the default is 2 threads
    ts = simulated_set(OPTICS, PARAMS, 2, 32, (60.0, 60.0), ("filaments",), seed=1)
    settings = TrainSettings(epochs=1, steps_per_epoch=2, batch=2, patch=32, width=4, depth=2, validation=2,
                             device="cpu")
    gen = train_steps(ts, OPTICS, PARAMS, settings)
    next(gen)
    assert torch.get_num_threads() == 2  # set while the training runs
    gen.close()  # cancelled
    assert torch.get_num_threads() == other_thread_count
    gen = train_steps(ts, OPTICS, PARAMS, settings)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        res = stop.value
    assert res.steps == 2 and torch.get_num_threads() == other_thread_count
    machine(monkeypatch, 2, 1.5)  # loaded: 1 thread while denoising
    seen = []
    run_tiles = apply._run_tiles

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return run_tiles(*args, **kwargs)

    monkeypatch.setattr(apply, "_run_tiles", spy)
    out = denoise_frames(ts.clean[:1], Denoiser.from_weights(res.meta, res.weights, "cpu"))
    assert out.shape == ts.clean[:1].shape and seen == [1]
    assert torch.get_num_threads() == other_thread_count
