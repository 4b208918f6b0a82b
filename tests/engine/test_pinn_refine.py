"""The PINN's real-data refinements: fitted gains, phases, OTF attenuation, the imprint notch,
the power-law prior and the periodic border (small simulations, known truth)."""

import numpy as np
import pytest
import torch

from napari_sim_ml.engine.metrics import border_cross, pattern_imprint
from napari_sim_ml.engine.mismatch import Imperfections
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn
from napari_sim_ml.engine.pinn.refine import imprint_notch, periodic_border, power_law_prior
from napari_sim_ml.engine.simulate import simulate_acquisition

SHORT = dict(iterations=60, early_stopping=False, preview_every=0, threads=1)
# the notch on from the start (the gains trade against the object at ±k without it; see the first test)
NOTCHED = dict(SHORT, notch_trigger_db=None)


@pytest.mark.slow
def test_frame_gains_are_recovered_per_angle():
    """Within one angle the frames' gains trade off against the object at ±k (a frame's mean
    holds m·Re(ô(k) e^{iφ})), so the data pin the gains down per angle; those are checked."""
    sim = simulate_acquisition("filaments", 64, photons=1000, seed=3,
                               imperfections=Imperfections(intensity_fluctuation=0.1))
    res = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(**NOTCHED), background=sim.offset)
    fitted = np.array(res.noise["frame_factors"]).reshape(3, 3).mean(axis=1)
    true = np.asarray(sim.frame_gains).reshape(3, 3).mean(axis=1)
    fitted, true = fitted / fitted.mean(), true / true.mean()
    spread = np.abs(true - 1).max()
    assert spread > 0.01
    assert np.abs(fitted - true).max() < 0.4 * spread


@pytest.mark.slow
def test_phase_errors_are_reduced():
    sim = simulate_acquisition("filaments", 64, photons=1000, seed=5,
                               imperfections=Imperfections(phase_error=0.15))
    given = sim.reconstruction_params
    res = fit_pinn(sim.raw, sim.optics, given, PinnSettings(**SHORT), background=sim.offset)

    def err(params):  # phase error per frame, with the common offset of each angle removed
        out = []
        for a, t in zip(params.angles, sim.params.angles, strict=False):
            d = np.angle(np.exp(1j * (np.array(a.phases_rad) - np.array(t.phases_rad))))
            out.append(d - np.angle(np.mean(np.exp(1j * d))))
        return float(np.sqrt(np.mean(np.square(out))))

    assert err(given) > 0.08
    assert err(res.params) < 0.6 * err(given)


@pytest.mark.slow
def test_otf_attenuation_is_fitted_towards_the_data_otf():
    sim = simulate_acquisition("filaments", 64, photons=2000, seed=6,
                               imperfections=Imperfections(otf_mismatch=0.5))  # data a = e^−1 = 0.37
    res = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(**SHORT), background=sim.offset)
    a = res.noise["otf_attenuation"]
    assert 0.2 < a < 0.75  # starts at 0.93
    clean = simulate_acquisition("filaments", 64, photons=2000, seed=6)
    res = fit_pinn(clean.raw, clean.optics, clean.params, PinnSettings(**SHORT), background=clean.offset)
    assert res.noise["otf_attenuation"] > a + 0.1


def test_notch_vanishes_at_the_pattern_peaks_only():
    sim = simulate_acquisition("filaments", 32, n_phases=5, seed=0)
    shape, px = (96, 96), sim.optics.pixel_size_um / 2
    w = imprint_notch(sim.params, shape, px, 0.2, torch.device("cpu")).numpy()
    fy = np.fft.fftfreq(shape[0], px)[:, None]
    fx = np.fft.rfftfreq(shape[1], px)[None, :]
    for a in sim.params.angles:
        for b in (1, 2):
            kx, ky = b * a.k_cycles_per_um[0], b * a.k_cycles_per_um[1]
            s = 1 if kx >= 0 else -1
            d = np.hypot(fx - s * kx, fy - s * ky)
            assert w[d == d.min()][0] < 0.3
    assert w[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert np.median(w) > 0.99


def test_power_law_prior_from_data_and_none_for_pure_noise():
    sim = simulate_acquisition("filaments", 64, photons=1000, seed=1)
    mean = (sim.raw - sim.offset).mean(axis=(0, 1))
    otf = ideal_otf(sim.optics)
    inv = power_law_prior(mean / mean.max(), sim.optics.pixel_size_um, otf, (160, 160),
                          sim.optics.pixel_size_um / 2, torch.device("cpu"))
    assert inv is not None and inv[0, 0] == 0
    assert float(inv[0, 40]) > float(inv[0, 5]) > 0  # weaker prior at low frequencies
    rng = np.random.default_rng(0)
    assert power_law_prior(rng.normal(size=(64, 64)), sim.optics.pixel_size_um, otf, (160, 160),
                           sim.optics.pixel_size_um / 2, torch.device("cpu")) is None


def test_periodic_border_removes_the_cross_and_keeps_the_interior():
    from scipy.ndimage import gaussian_filter

    texture = gaussian_filter(np.random.default_rng(0).random((256, 256)), 2) * 10
    img = (texture + np.mgrid[0:256, 0:256][1] / 256.0).astype(np.float32)  # a ramp: jumps at the borders
    assert border_cross(img).worst_db > 8
    out = periodic_border(img, 16)
    assert border_cross(out).worst_db < 2
    np.testing.assert_array_equal(out[16:-16, 16:-16], img[16:-16, 16:-16])


@pytest.mark.slow
def test_pinn_on_mismatched_data_has_no_pattern_imprint():
    imp = Imperfections(intensity_fluctuation=0.07, envelope=0.3, modulation_variation=0.3)
    sim = simulate_acquisition("filaments", 64, photons=1000, seed=2, imperfections=imp)
    res = fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(**SHORT), background=sim.offset)
    px = sim.optics.pixel_size_um / 2
    assert pattern_imprint(res.image, px, sim.params).worst_db < 12
    assert border_cross(res.image, px).worst_db < 3
