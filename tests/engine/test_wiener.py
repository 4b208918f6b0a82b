import numpy as np
import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.metrics import (
    compare_to_truth,
    decorrelation_resolution,
    fourier_ring_correlation,
    modulation_contrast_map,
    sim_passband_truth,
)
from napari_sim_ml.engine.parameters import FilterSettings
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, upsample2x, wiener_filter, wiener_reconstruct


@pytest.fixture(scope="module")
def sim():
    return simulate_acquisition("filaments", 256, photons=1000, seed=11)


@pytest.fixture(scope="module")
def prepared(sim):
    return prepare_reconstruction(sim.raw, sim.optics, sim.params, background=sim.offset)


@pytest.mark.slow
def test_estimated_parameters_are_within_0_3_db_of_the_true_ones(sim_100):
    for sim in sim_100[:2]:
        ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
        est = estimate_pattern(sim.raw, sim.optics, background=sim.offset).params
        true_db = compare_to_truth(wiener_reconstruct(sim.raw, sim.optics, sim.params, background=100), ref)[0]
        est_db = compare_to_truth(wiener_reconstruct(sim.raw, sim.optics, est, background=100), ref)[0]
        assert est_db > true_db - 0.3


@pytest.mark.slow
def test_sim_beats_widefield_against_the_truth(sim, prepared):
    ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
    wf_db, _ = compare_to_truth(prepared.widefield, ref)
    sim_db, sim_ssim = compare_to_truth(wiener_filter(prepared), ref)
    assert sim_db > wf_db + 6 and sim_ssim > 0.85


@pytest.mark.slow
def test_frc_resolution_is_1_7x_finer_than_widefield():
    a = simulate_acquisition("filaments", 256, photons=5000, seed=1)
    b = simulate_acquisition("filaments", 256, photons=5000, seed=2, params=a.params, truth=a.truth)
    recon, wide = [], []
    for s in (a, b):
        est = estimate_pattern(s.raw, s.optics, background=s.offset).params
        p = prepare_reconstruction(s.raw, s.optics, est, background=s.offset)
        recon.append(wiener_filter(p))
        wide.append(p.widefield)
    px = a.optics.pixel_size_um / 2
    r_sim = fourier_ring_correlation(*recon, px).resolution_um
    r_wf = fourier_ring_correlation(*wide, px).resolution_um
    assert r_wf / r_sim >= 1.7
    assert decorrelation_resolution(recon[0], px) < decorrelation_resolution(wide[0], px)


def test_output_grid_registration():
    """Output pixel (2i, 2j) sits on raw pixel (i, j) (so layer translate = 0)."""
    rng = np.random.default_rng(0)
    spec = np.fft.fft2(rng.random((64, 48)))
    spec[np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(48), indexing="ij")) > 0.4] = 0
    image = np.fft.ifft2(spec).real  # band-limited, as every band is
    fine = upsample2x(image.astype(np.float32))
    assert fine.shape == (128, 96)
    np.testing.assert_allclose(fine[::2, ::2], image, atol=1e-5)


@pytest.mark.slow
def test_widefield_matches_the_frame_mean(prepared, sim):
    from scipy.ndimage import gaussian_filter

    mean_raw = sim.raw.mean(axis=(0, 1)) - sim.offset
    inner = (slice(20, -20), slice(20, -20))
    smooth = lambda a: gaussian_filter(a, 2)[inner]  # noqa: E731  (the mean keeps some stripes)
    np.testing.assert_allclose(smooth(prepared.widefield[::2, ::2]), smooth(mean_raw), rtol=0.03, atol=1.0)


@pytest.mark.slow
def test_filter_stage_responds_to_every_slider_and_keeps_intensity(prepared):
    base = wiener_filter(prepared, FilterSettings())
    assert base.dtype == np.float32 and base.shape == (512, 512)
    # Wiener shrinkage at the attenuated zero frequency costs a few per cent of intensity
    assert base.mean() == pytest.approx(prepared.widefield.mean(), rel=0.1)
    for change in (dict(wiener=0.2), dict(apo_cutoff=0.6), dict(apo_bend=2.0), dict(attenuation=0.0),
                   dict(attenuation_fwhm=3.0)):
        other = wiener_filter(prepared, FilterSettings(**change))
        assert np.abs(other - base).max() > 1e-3 * np.abs(base).max(), change
    np.testing.assert_array_equal(wiener_filter(prepared, FilterSettings()), base)  # caches do not leak


@pytest.mark.slow
def test_larger_w_smooths(prepared):
    sharp = wiener_filter(prepared, FilterSettings(wiener=0.01))
    smooth = wiener_filter(prepared, FilterSettings(wiener=1.0))
    assert np.abs(np.diff(smooth, axis=1)).mean() < np.abs(np.diff(sharp, axis=1)).mean()


def test_three_beam_reconstruction_beats_widefield():
    sim = simulate_acquisition("mesh", 128, n_phases=5, photons=1000, seed=4)
    ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
    p = prepare_reconstruction(sim.raw, sim.optics, sim.params, background=sim.offset)
    assert compare_to_truth(wiener_filter(p), ref)[0] > compare_to_truth(p.widefield, ref)[0] + 4


@pytest.mark.slow
def test_mismatched_parameters_are_an_input_error(sim):
    with pytest.raises(SimInputError, match="phases but the parameters"):
        prepare_reconstruction(sim.raw[:, :2], sim.optics, sim.params)


def test_modulation_contrast_map_scales_with_the_modulation(sim):
    from dataclasses import replace

    weak = replace(sim.params, angles=tuple(replace(a, modulation=(0.2,)) for a in sim.params.angles))
    sim_weak = simulate_acquisition(size=256, params=weak, truth=sim.truth, photons=1000, seed=12)
    bright = sim.raw.mean(axis=(0, 1)) > np.percentile(sim.raw.mean(axis=(0, 1)), 95)
    strong_mc = modulation_contrast_map(sim.raw, sim.params, background=sim.offset)
    weak_mc = modulation_contrast_map(sim_weak.raw, weak, background=sim.offset)
    assert strong_mc.shape == (3, 256, 256)
    ratio = np.median(strong_mc[:, bright]) / np.median(weak_mc[:, bright])
    assert 2.0 < ratio < 5.0  # 0.8 / 0.2, less the weak stack's noise floor
