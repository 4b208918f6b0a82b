"""PINN engine: forward model, noise model, fits, cancelling and bad input (small and fast)."""

import gc
import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.pinn import PinnProgress, PinnResult, PinnSettings, fit_pinn, pinn_steps
from napari_sim_ml.engine.pinn.noise import estimate_noise
from napari_sim_ml.engine.pinn.physics import ForwardModel, render_patterns, transfer_function
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.steps import run_to_end
from napari_sim_ml.engine.wiener import prepare_reconstruction

FAST = dict(iterations=25, preview_every=5)


def live_networks() -> list:
    """The PINN networks still reachable in this process."""
    from napari_sim_ml.engine.pinn.net import UNet

    return [o for o in gc.get_objects() if type(o) is UNet]  # type(): no attribute look-ups on lazy proxies


@pytest.fixture(scope="module")
def sim64():
    return simulate_acquisition("filaments", 64, photons=200, seed=4)


@pytest.mark.parametrize("n_phases", [3, 5])
def test_torch_forward_model_reproduces_the_simulation(n_phases):
    noisy = simulate_acquisition("filaments", 48, n_phases=n_phases, photons=500, seed=2)
    clean = simulate_acquisition("filaments", 48, n_phases=n_phases, photons=500, noise=False,
                                 truth=noisy.truth, params=noisy.params)
    margin = 16  # simulate pads the truth by reflection (2 × 16 fine px) and crops
    obj = np.pad(clean.truth, 2 * margin, mode="reflect")
    dev = torch.device("cpu")
    fine_px = clean.optics.pixel_size_um / 2
    pats = render_patterns(clean.params, obj.shape, fine_px, 2 * margin, dev)
    fm = ForwardModel(pats, transfer_function(ideal_otf(clean.optics), obj.shape, fine_px,
                                              clean.optics.pixel_size_um, dev), 2, margin, (48, 48))
    pred = fm(torch.from_numpy(obj)).numpy().reshape(clean.raw.shape).astype(np.float64)
    ref = clean.raw.astype(np.float64) - clean.offset
    scale = (pred * ref).sum() / (pred * pred).sum()  # simulate scales the peak to ``photons``
    assert np.linalg.norm(scale * pred - ref) / np.linalg.norm(ref) < 1e-3


def test_sampling_by_spectrum_crop_equals_strided_sampling():
    dev = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    obj = torch.rand(96, 96, generator=gen)
    pats = torch.rand(3, 96, 96, generator=gen)
    otf = ideal_otf(simulate_acquisition("filaments", 32, seed=0).optics)
    tf = transfer_function(otf, (96, 96), 0.04, 0.08, dev)
    fast = ForwardModel(pats, tf, 2, 4, (40, 40))
    assert fast.small is not None
    slow = ForwardModel(pats, tf, 2, 4, (40, 40))
    slow.small = None
    assert torch.allclose(fast(obj), slow(obj), atol=1e-5 * float(slow(obj).abs().max()))


def test_photon_transfer_fit_finds_gain_and_read_noise():
    sim = simulate_acquisition("mesh", 128, photons=300, read_noise=2.0, seed=1)
    y = (sim.raw - sim.offset).reshape(-1, 128, 128)
    model = estimate_noise(y, sim.optics.pixel_size_um, ideal_otf(sim.optics).support_cycles_per_um)
    assert model.reliable
    assert model.gain == pytest.approx(1.0, abs=0.08)
    assert model.var0 == pytest.approx(4.0, abs=2.5)


@pytest.mark.slow
def test_noise_aware_loss_falls_and_beats_widefield(sim64):
    settings = PinnSettings(iterations=40, preview_every=10, early_stopping=False)
    previews = []

    def seen(p):
        assert isinstance(p, PinnProgress) and p.total == 40
        if p.preview is not None:
            previews.append(p.preview)

    result = run_to_end(pinn_steps(sim64.raw, sim64.optics, sim64.params, settings, background=sim64.offset), seen)
    assert isinstance(result, PinnResult)
    assert result.image.shape == (128, 128) and result.image.dtype == np.float32
    assert result.residual.shape == (64, 64)
    assert len(previews) == 4 and previews[0].shape == (128, 128)
    assert result.iterations == 40 and len(result.losses) == 40
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    ref = sim_passband_truth(sim64.truth, sim64.optics, sim64.params)
    widefield = prepare_reconstruction(sim64.raw, sim64.optics, sim64.params, background=sim64.offset).widefield
    assert compare_to_truth(result.image, ref)[0] > compare_to_truth(widefield, ref)[0] + 3.0
    # the fitted model explains the data to about the noise level
    assert 0.7 < float(np.sqrt(np.mean(result.residual**2))) < 1.5
    assert result.noise["gain"] == pytest.approx(1.0, abs=0.15)


@pytest.mark.slow
def test_faithful_mode_loss_falls(sim64):
    result = fit_pinn(sim64.raw, sim64.optics, sim64.params, PinnSettings(mode="faithful", iterations=12))
    assert result.image.shape == (128, 128)
    # a fitted image, not a flat one: it follows the widefield image of the same frames
    widefield = prepare_reconstruction(sim64.raw, sim64.optics, sim64.params, background=sim64.offset).widefield
    assert result.image.std() > 0.02
    assert np.corrcoef(result.image.ravel(), widefield.ravel())[0, 1] > 0.5
    assert np.mean(result.losses[-3:]) < np.mean(result.losses[:3])
    assert result.sigma is None and not result.stopped_early


@pytest.mark.slow
def test_given_patterns_run_without_parameters(sim64):
    fine = (128, 128)
    pats = render_patterns(sim64.params, fine, sim64.optics.pixel_size_um / 2, 0.0, torch.device("cpu")).numpy()
    result = fit_pinn(sim64.raw, sim64.optics, None, PinnSettings(iterations=6), background=sim64.offset,
                      patterns=pats.reshape(3, 3, *fine))
    assert result.image.shape == fine and np.isfinite(result.image).all()
    yy, xx = np.mgrid[-8:9, -8:9]
    psf = np.exp(-(yy**2 + xx**2) / (2 * 2.5**2))  # a PSF image on the fine grid, as in the paper's sets
    result = fit_pinn(sim64.raw, sim64.optics, None, PinnSettings(mode="faithful", iterations=3),
                      patterns=pats, psf=psf)
    assert result.image.shape == fine and np.isfinite(result.image).all()


@pytest.mark.slow
def test_uncertainty_map_is_positive_and_deterministic(sim64):
    settings = PinnSettings(iterations=10, uncertainty_samples=2, uncertainty_steps=3, seed=3, threads=1)
    a = fit_pinn(sim64.raw, sim64.optics, sim64.params, settings, background=sim64.offset)
    b = fit_pinn(sim64.raw, sim64.optics, sim64.params, settings, background=sim64.offset)
    assert a.sigma.shape == a.image.shape and (a.sigma > 0).all()
    assert len(a.losses) == 10 + 2 * 3 and a.iterations == 10
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.sigma, b.sigma)


@pytest.mark.slow
def test_closing_the_generator_stops_the_fit_and_frees_the_network(sim64):
    gc.collect()
    threads = torch.get_num_threads()
    gen = pinn_steps(sim64.raw, sim64.optics, sim64.params, PinnSettings(**FAST), background=sim64.offset)
    for _ in range(3):
        next(gen)
    assert len(live_networks()) == 1
    gen.close()
    gc.collect()
    assert len(live_networks()) == 0
    assert torch.get_num_threads() == threads
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.slow
def test_error_inside_the_fit_frees_the_network(sim64, monkeypatch):
    from napari_sim_ml.engine.pinn import noise_aware as pinn_model

    gc.collect()
    monkeypatch.setattr(pinn_model, "total_variation", lambda o, eps: o.sum() * float("nan"))
    with pytest.raises(SimInputError, match="loss became NaN at step 1"):
        fit_pinn(sim64.raw, sim64.optics, sim64.params, PinnSettings(**FAST), background=sim64.offset)
    gc.collect()
    assert len(live_networks()) == 0


def test_faithful_mode_refuses_a_background_above_every_pixel(sim64):
    with pytest.raises(SimInputError, match="at or below the camera offset"):
        fit_pinn(sim64.raw, sim64.optics, sim64.params, PinnSettings(mode="faithful", iterations=2),
                 background=float(sim64.raw.max()) + 1)


def test_bad_input_raises_clear_errors(sim64, monkeypatch):
    with pytest.raises(SimInputError, match="needs the illumination"):
        fit_pinn(sim64.raw, sim64.optics, None)
    with pytest.raises(SimInputError, match="3 angles × 2 phases but the parameters describe 3 × 3"):
        fit_pinn(sim64.raw[:, :2], sim64.optics, sim64.params)
    with pytest.raises(SimInputError, match="integer multiple"):
        fit_pinn(sim64.raw, sim64.optics, None, patterns=np.ones((9, 100, 100)))
    with pytest.raises(SimInputError, match="one image per raw frame"):
        fit_pinn(sim64.raw, sim64.optics, None, patterns=np.ones((4, 128, 128)))
    with pytest.raises(SimInputError, match="unknown PINN mode"):
        PinnSettings(mode="magic")
    bad = sim64.raw.copy()
    bad[0, 0, 3, 3] = np.nan
    with pytest.raises(SimInputError):
        fit_pinn(bad, sim64.optics, sim64.params)
    from napari_sim_ml.engine.pinn import noise as pinn_noise

    monkeypatch.setattr(pinn_noise, "available_memory_bytes", lambda: 50 * 2**20)
    with pytest.raises(SimInputError, match="crop the field of view"):
        fit_pinn(sim64.raw, sim64.optics, sim64.params, PinnSettings(**FAST))


def test_importing_the_engine_does_not_import_torch():
    code = ("import sys, napari_sim_ml.engine.pinn, napari_sim_ml.engine.wiener, "
            "napari_sim_ml.engine.estimate; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
