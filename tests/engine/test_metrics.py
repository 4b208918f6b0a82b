"""Truth-free measures with known answers: imprint, border cross, residual, decorrelation."""

from dataclasses import replace

import numpy as np
import pytest

from napari_sim_ml.engine.bands import periodic_smooth
from napari_sim_ml.engine.metrics import (
    border_cross,
    decorrelation_resolution,
    noise_variance_out_of_band,
    normalised_residual_stats,
    pattern_imprint,
    populated_radius,
    sim_forward_model,
    trust_warnings,
)
from napari_sim_ml.engine.parameters import PatternParameters
from napari_sim_ml.engine.simulate import illumination, simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, upsample2x, wiener_filter


@pytest.fixture(scope="module")
def sim():
    return simulate_acquisition("filaments", 256, photons=1000, seed=11)


@pytest.fixture(scope="module")
def recon(sim):
    return wiener_filter(prepare_reconstruction(sim.raw, sim.optics, sim.params, background=sim.offset))


@pytest.mark.slow
def test_a_pattern_added_on_purpose_scores_high_and_a_clean_image_low(sim, recon):
    px = sim.optics.pixel_size_um / 2
    clean = pattern_imprint(recon, px, sim.params)
    assert len(clean.peaks_db) == 3 and clean.worst_db < 6.0
    stripes = illumination(recon.shape, px, sim.params.angles[1], 0.7) - 1.0
    dirty = pattern_imprint(recon + 0.03 * recon.std() * stripes, px, sim.params)
    assert dirty.peaks_db[1] > 12.0 and dirty.worst_db == dirty.peaks_db[1]
    assert max(dirty.peaks_db[0], dirty.peaks_db[2]) < 6.0  # the other angles stay clean
    assert trust_warnings(imprint=dirty) and not trust_warnings(imprint=clean)


@pytest.mark.slow
def test_pure_noise_scores_near_zero_db(sim):
    rng = np.random.default_rng(3)
    values = [pattern_imprint(rng.normal(size=(256, 256)), 0.04, sim.params).peaks_db for _ in range(20)]
    assert abs(np.median(values)) < 1.5 and np.max(values) < 10.0


def test_three_beam_imprint_looks_at_k_and_2k():
    sim = simulate_acquisition("filaments", 128, n_phases=5, photons=1000, seed=2)
    px = sim.optics.pixel_size_um / 2
    rng = np.random.default_rng(0)
    base = rng.normal(size=(256, 256))
    score = pattern_imprint(base, px, sim.params)
    assert len(score.peaks_db) == 6  # 3 angles × (k, 2k)
    a = sim.params.angles[0]
    second = replace(a, modulation=(0.0, 1.0))  # cos(2(2πk·r + φ)) only
    dirty = pattern_imprint(base + 0.3 * (illumination(base.shape, px, second, 0.0) - 1), px, sim.params)
    k2 = [i for i, f in enumerate(dirty.frequencies) if np.isclose(f[0], 2 * a.k_cycles_per_um[0])][0]
    assert dirty.peaks_db[k2] > 12.0


def test_hard_edged_image_shows_the_cross_and_its_periodic_part_does_not():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[:256, :256]
    hard = 100 + 40 * x / 256 + 25 * y / 256 + rng.normal(size=(256, 256))
    score = border_cross(hard, 0.04)
    assert score.kx0_db > 10 and score.ky0_db > 10
    periodic, smooth = periodic_smooth(hard)
    np.testing.assert_allclose(periodic + smooth, hard, rtol=1e-5)
    assert abs(float(smooth.mean())) < 1e-3
    assert border_cross(periodic, 0.04).worst_db < 1.5
    assert border_cross(rng.normal(size=(256, 256)), 0.04).worst_db < 2.0  # ~100 independent values per line
    assert trust_warnings(cross=score)


@pytest.mark.slow
def test_decorrelation_depends_on_the_image_not_the_grid(sim):
    px = sim.optics.pixel_size_um
    wide = (sim.raw - sim.offset).mean(axis=(0, 1))
    fine = upsample2x(wide.astype(np.float32))
    assert populated_radius(wide, px) == pytest.approx(0.5 / px)
    assert populated_radius(fine, px / 2) == pytest.approx(0.5 / px, rel=0.02)
    camera, padded = decorrelation_resolution(wide, px), decorrelation_resolution(fine, px / 2)
    assert padded == pytest.approx(camera, rel=0.03)
    assert 0.18 < camera < 0.3  # widefield at NA 1.4, 525 nm: λ/2NA = 0.19 µm, noise-limited above


@pytest.mark.slow
def test_noise_variance_and_residual_of_the_true_model(sim):
    data = sim.raw - sim.offset
    var = noise_variance_out_of_band(data, sim.optics)
    expected = data.mean(axis=(-2, -1)) + sim.read_noise**2  # Poisson + read noise
    np.testing.assert_allclose(var, expected, rtol=0.06)
    clean = simulate_acquisition("filaments", 256, photons=1000, seed=11, noise=False).raw - sim.offset
    good = normalised_residual_stats(data, clean, sim.params, sim.optics.pixel_size_um, var, fit_gain=False)
    assert abs(good.mean) < 0.05 and 0.9 < good.variance < 1.1 and good.worst_imprint_db < 8.0
    # a model that forgets the stripes of one angle leaves them in the residual
    flat = PatternParameters(tuple(replace(a, modulation=(0.0,)) if d == 0 else a
                                   for d, a in enumerate(sim.params.angles)))
    model = sim_forward_model(sim.truth, sim.optics, flat)
    bad = normalised_residual_stats(data, model, sim.params, sim.optics.pixel_size_um, var)
    assert bad.imprint_db[0] > 20.0 and bad.variance > 2.0
    assert trust_warnings(residual=bad)
