"""Calibration reuse (engine/refit.py): k kept from known parameters, phases and modulation refitted."""

from dataclasses import replace

import numpy as np
import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.parameters import PatternParameters
from napari_sim_ml.engine.refit import refit_with_known_k
from napari_sim_ml.engine.simulate import simulate_acquisition

from .test_estimate import centre_phase_errors


def calibration(params, k_scale=1.0, phase_shift=1.0):
    """Another acquisition's parameters: the same k (× k_scale), other absolute phases, modulation 0.5."""
    return PatternParameters(tuple(
        replace(a, k_cycles_per_um=tuple(v * k_scale for v in a.k_cycles_per_um),
                phases_rad=tuple(p + phase_shift for p in a.phases_rad), modulation=(0.5,) * a.n_orders)
        for a in params.angles))


def check(sim, known, bound):
    res = refit_with_known_k(sim.raw, sim.optics, known, background=sim.offset)
    for kept, given in zip(res.params.angles, known.angles, strict=True):
        assert kept.k_cycles_per_um == given.canonical().k_cycles_per_um  # k is kept exactly
    worst = centre_phase_errors(sim.params, res.params, sim.raw.shape[-2:], sim.optics.pixel_size_um).max()
    assert worst < bound, f"worst centre phase error {worst:.3f} rad"
    mods = [abs(e - t) for a, b in zip(sim.params.angles, res.params.angles, strict=True)
            for t, e in zip(a.modulation, b.modulation, strict=True)]
    assert max(mods) < 0.1
    return res


@pytest.mark.slow
@pytest.mark.parametrize("phases, photons", [(3, 100), (3, 1000), (5, 1000)],
                         ids=["2beam-100", "2beam-1000", "3beam-1000"])
def test_phases_with_exact_and_slightly_wrong_k(phases, photons):
    """Measured: 2-beam ≤ 0.034 rad at 100 photons, ≤ 0.010 rad at 1000; 3-beam ≤ 0.014 rad at 1000 (k exact
    or 0.05 % off)."""
    sim = simulate_acquisition("filaments", 256, n_phases=phases, photons=photons, seed=0)
    bound = 0.05 if photons == 100 else 0.02
    for k_scale in (1.0, 1.0005):
        res = check(sim, calibration(sim.params, k_scale), bound)
        assert all(d.grade == "excellent" for d in res.diagnostics) and not res.warnings


@pytest.mark.slow
def test_three_beam_phases_at_100_photons(sim_3beam_100):
    """Measured: ≤ 0.016 rad (exact k), ≤ 0.016 rad (0.05 % off)."""
    for sim in sim_3beam_100:
        for k_scale in (1.0, 1.0005):
            res = check(sim, calibration(sim.params, k_scale), 0.04)
            assert res.params.n_orders == 2 and res.diagnostics[0].margin == float("inf")


@pytest.mark.slow
def test_a_calibration_that_does_not_fit_is_reported():
    sim = simulate_acquisition("filaments", 256, photons=1000, seed=2)
    res = refit_with_known_k(sim.raw, sim.optics, calibration(sim.params, 1.01), background=sim.offset)
    assert res.warnings and all("from the given k" in w for w in res.warnings)
    assert all(d.grade not in ("good", "excellent") for d in res.diagnostics)


def test_noise_is_refitted_but_graded_inadequate():
    sim = simulate_acquisition("filaments", 128, photons=100, seed=3)
    rng = np.random.default_rng(0)
    noise = rng.poisson(50, sim.raw.shape).astype(np.float32)
    res = refit_with_known_k(noise, sim.optics, sim.params)
    assert all(d.grade == "inadequate" for d in res.diagnostics)
    assert len(res.warnings) == 3 and "barely visible" in res.warnings[0]
    assert all(a.modulation == t.modulation for a, t in zip(res.params.angles, sim.params.angles, strict=True))


def test_mismatched_parameters_are_refused_in_one_sentence():
    sim = simulate_acquisition("filaments", 64, photons=100, seed=4)
    two = PatternParameters(sim.params.angles[:2])
    with pytest.raises(SimInputError, match=r"^the known parameters have 2 angles but the stack has 3; [^\n]*$"):
        refit_with_known_k(sim.raw, sim.optics, two)
    with pytest.raises(SimInputError, match=r"have 3 phases per angle but the stack has 4"):
        refit_with_known_k(np.concatenate([sim.raw, sim.raw[:, :1]], axis=1), sim.optics, sim.params)
    with pytest.raises(SimInputError, match=r"1 harmonic order"):
        refit_with_known_k(sim.raw, sim.optics, sim.params, n_orders=2)
    with pytest.raises(SimInputError, match=r"\(angles, phases, Y, X\)"):
        refit_with_known_k(sim.raw[0], sim.optics, sim.params)
