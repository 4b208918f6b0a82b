"""The PINN's settings that follow the data: resampled (correlated-noise) frames in the simulator,
the pixel steps scaled by the noise check, and the imprint notch that comes in only on evidence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml.engine import mismatch
from napari_sim_ml.engine.mismatch import Imperfections
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn
from napari_sim_ml.engine.pinn.noise import estimate_noise, inband_noise_ratio
from napari_sim_ml.engine.pinn.types import NOISE_CHECK_RATIO
from napari_sim_ml.engine.simulate import simulate_acquisition


def _bicubic_up_then_bin_1d(x: np.ndarray) -> np.ndarray:
    """Explicit 2× cubic-convolution upsampling (a = −0.5, pixel-centre aligned, symmetric
    border) of the last axis, then the mean of each pair."""
    n = x.shape[-1]
    xp = np.concatenate([x[..., 3::-1], x, x[..., :-5:-1]], axis=-1)  # symmetric, 4 px each side
    fine = []
    for i in range(2 * n):
        pos = (i + 0.5) / 2 - 0.5 + 4
        j = np.arange(int(np.floor(pos)) - 1, int(np.floor(pos)) + 3)
        t = np.abs(pos - j)
        a = mismatch.BICUBIC_A
        w = np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a)
        fine.append(np.tensordot(xp[..., j], w, axes=([-1], [0])))
    fine = np.stack(fine, axis=-1)
    return fine.reshape(*x.shape[:-1], n, 2).mean(-1)


def test_upsample_and_bin_is_bicubic_upsampling_then_binning():
    img = np.random.default_rng(0).normal(size=(12, 10))
    explicit = np.swapaxes(_bicubic_up_then_bin_1d(np.swapaxes(_bicubic_up_then_bin_1d(img), 0, 1)), 0, 1)
    np.testing.assert_allclose(mismatch.upsample_and_bin(img), explicit, atol=1e-12)
    h = mismatch.upsample_bin_kernel()
    assert h.sum() == pytest.approx(1.0)
    assert h[2] - 2 * h[1] + 2 * h[0] == pytest.approx(0.6875)  # transfer at the Nyquist frequency


def test_resampled_is_switchable_alone_and_not_typical():
    assert Imperfections.only("resampled").resampled is True
    assert Imperfections.typical().resampled is False
    with pytest.raises(Exception, match="unknown imperfection"):
        Imperfections.only("bogus")


def _ratio(sim) -> float:
    y = sim.raw.astype(np.float64) - sim.offset
    kc = ideal_otf(sim.optics).support_cycles_per_um
    model = estimate_noise(y.reshape(-1, *y.shape[-2:]), sim.optics.pixel_size_um, kc)
    return inband_noise_ratio(y, sim.params, sim.optics.pixel_size_um, kc, model)


def test_resampled_frames_carry_the_noise_the_check_catches():
    clean = simulate_acquisition("filaments", 96, photons=300, seed=3)
    res = simulate_acquisition("filaments", 96, photons=300, seed=3, imperfections=Imperfections.only("resampled"))
    assert 0.7 < _ratio(clean) < 1.3
    assert _ratio(res) > NOISE_CHECK_RATIO
    # the round trip is a low-pass filter: the frames' means stay, their pixel variance drops
    np.testing.assert_allclose(res.raw.mean(axis=(-2, -1)), clean.raw.mean(axis=(-2, -1)), rtol=2e-3)
    assert np.var(res.raw - clean.raw.mean()) < np.var(clean.raw - clean.raw.mean())


def test_pixel_steps_follow_the_noise_check():
    short = dict(iterations=3, threads=1, notch_trigger_db=None)
    clean = simulate_acquisition("filaments", 64, photons=300, seed=5)
    a = fit_pinn(clean.raw, clean.optics, clean.params, PinnSettings(**short), background=clean.offset)
    b = fit_pinn(clean.raw, clean.optics, clean.params, PinnSettings(noise_scaled_steps=False, **short),
                 background=clean.offset)
    assert a.noise["noise_inflation"] == 1.0 and a.noise["step_scale"] == 1.0
    np.testing.assert_array_equal(a.image, b.image)  # the check did not fire: nothing changes
    sim = simulate_acquisition("filaments", 64, photons=300, seed=5, imperfections=Imperfections.only("resampled"))
    c = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(**short), background=sim.offset)
    d = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(noise_scaled_steps=False, **short),
                 background=sim.offset)
    assert c.noise["noise_inflation"] > NOISE_CHECK_RATIO
    assert c.noise["step_scale"] == pytest.approx(np.sqrt(c.noise["noise_inflation"]))
    assert d.noise["step_scale"] == 1.0 and not np.array_equal(c.image, d.image)


@pytest.mark.slow
def test_the_notch_comes_in_only_when_the_fit_paints_the_pattern():
    kw = dict(iterations=25, threads=1, early_stopping=False)
    clean = simulate_acquisition("filaments", 96, photons=1000, seed=2)
    res = fit_pinn(clean.raw, clean.optics, clean.params, PinnSettings(**kw), background=clean.offset)
    assert res.noise["notch"] is False and res.noise["notch_restart_step"] == 0
    sim = simulate_acquisition("filaments", 96, photons=1000, seed=2, imperfections=Imperfections.typical())
    res = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(**kw), background=sim.offset)
    assert res.noise["notch"] is True and res.noise["notch_restart_step"] == 10
    # the restart is a fresh fit with the notch: the same as 15 steps with the notch on from the start
    always = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(**{**kw, "iterations": 15},
                                                                   notch_trigger_db=None), background=sim.offset)
    np.testing.assert_allclose(res.image, always.image, rtol=1e-5, atol=1e-4 * float(always.image.max()))
