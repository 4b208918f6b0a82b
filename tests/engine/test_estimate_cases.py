"""Estimation cases nothing else covered (issue 12 item 6): the quality grades, 2, 4 and 5 angles,
and the per-frame gain fit under strong bleaching. Simulated data, errors against the truth."""

import numpy as np
import pytest

from napari_sim_ml.engine.estimate import MIN_QUALITY, QUALITY_GRADES, estimate_pattern, quality_grade
from napari_sim_ml.engine.parameters import PatternParameters, wrap_phase
from napari_sim_ml.engine.simulate import simulate_acquisition

OFFSET = 100.0


def matched(truth: PatternParameters, estimate: PatternParameters):
    """(truth, estimate) angle pairs, both canonical, each estimated angle matched to the nearest true one."""
    pairs = []
    for e in estimate.angles:
        e = e.canonical()
        a = min((t.canonical() for t in truth.angles), key=lambda t: abs((e.angle_deg - t.angle_deg + 90) % 180 - 90))
        pairs.append((a, e))
    return pairs


def centre_phase_error(truth: PatternParameters, estimate: PatternParameters, shape, pixel_um: float) -> float:
    """Worst per-frame phase error (rad) at the field centre, where a tiny k error levers least."""
    centre = np.array(shape[::-1], dtype=float) / 2 * pixel_um  # (x, y) µm
    worst = 0.0
    for a, e in matched(truth, estimate):
        ca = 2 * np.pi * np.dot(a.k_cycles_per_um, centre)
        ce = 2 * np.pi * np.dot(e.k_cycles_per_um, centre)
        worst = max(worst, *(abs(wrap_phase(pe + ce - pa - ca)) for pa, pe in zip(a.phases_rad, e.phases_rad,
                                                                                   strict=True)))
    return worst


def step_error(truth: PatternParameters, estimate: PatternParameters) -> float:
    """Worst error (rad) of the phase steps (each frame's phase relative to the angle's first frame)."""
    worst = 0.0
    for a, e in matched(truth, estimate):
        for n in range(1, len(a.phases_rad)):
            true_step = a.phases_rad[n] - a.phases_rad[0]
            step = e.phases_rad[n] - e.phases_rad[0]
            worst = max(worst, abs(wrap_phase(step - true_step)))
    return worst


# ---------------------------------------------------------------- quality grades
@pytest.mark.parametrize(("quality", "grade"), [
    (0.0, "inadequate"), (6.49, "inadequate"), (6.5, "low"), (11.99, "low"), (12.0, "good"),
    (29.99, "good"), (30.0, "excellent"), (1e6, "excellent"), (float("inf"), "excellent"),
])
def test_quality_grade_thresholds(quality, grade):
    assert quality_grade(quality) == grade


def test_the_grade_table_starts_at_the_refusal_threshold():
    limits = [limit for limit, _ in QUALITY_GRADES]
    assert limits == sorted(limits)
    assert limits[0] == MIN_QUALITY  # below what estimation refuses is 'inadequate', nothing else
    assert [quality_grade(limit) for limit in limits] == ["low", "good", "excellent"]


def test_grades_of_real_estimates_follow_the_signal():
    """Pure noise grades 'inadequate'; a 300-photon pattern 'good' or better; each grade is quality_grade(quality)."""
    noise = np.random.default_rng(0).poisson(200.0, (3, 3, 128, 128)).astype(np.float32)
    sim = simulate_acquisition("filaments", 128, photons=300, seed=0)
    optics = sim.optics
    for frames, expected in ((noise, {"inadequate"}), (sim.raw, {"good", "excellent"})):
        res = estimate_pattern(frames, optics, background=OFFSET, require_pattern=False)
        assert {d.grade for d in res.diagnostics} <= expected, [(d.quality, d.grade) for d in res.diagnostics]
        for d in res.diagnostics:
            if not d.note and d.margin >= 2:  # a doubtful angle is capped at 'low' on purpose
                assert d.grade == quality_grade(d.quality)


# ---------------------------------------------------------------- 2, 4 and 5 angles
@pytest.mark.slow
@pytest.mark.parametrize("n_angles", [2, 4, 5])
def test_estimation_with_2_4_and_5_angles(n_angles):
    """k within 0.2 %, direction within 0.1°, phases at the centre within 0.1 rad, modulation within 0.06
    (measured at 300 photons, 128 px, seeds 0-2: ≤ 0.04 %, ≤ 0.02°, ≤ 0.07 rad at the origin, ≤ 0.04)."""
    for seed in range(3):
        sim = simulate_acquisition("filaments", 128, n_angles=n_angles, photons=300, seed=seed)
        res = estimate_pattern(sim.raw, sim.optics, background=sim.offset)
        assert res.params.n_angles == n_angles and len(res.diagnostics) == n_angles
        pairs = matched(sim.params, res.params)
        assert len({round(a.angle_deg, 3) for a, _ in pairs}) == n_angles  # every true angle found once
        for a, e in pairs:
            assert abs(e.k_magnitude - a.k_magnitude) / a.k_magnitude < 0.002
            assert abs((e.angle_deg - a.angle_deg + 90) % 180 - 90) < 0.1
            assert abs(e.modulation[0] - a.modulation[0]) < 0.06
        worst = centre_phase_error(sim.params, res.params, sim.raw.shape[-2:], sim.optics.pixel_size_um)
        assert worst < 0.1, f"{n_angles} angles, seed {seed}: centre phase error {worst:.3f} rad"
        assert all(d.grade in ("good", "excellent") for d in res.diagnostics)


# ---------------------------------------------------------------- per-frame gains (bleaching)
def bleached(seed: int, loss_per_frame: float) -> tuple[np.ndarray, object]:
    """A 3-angle 2-beam stack whose frames fade by exp(−loss · frame index) in acquisition order, as
    bleaching does, with photon and read noise added after the fading."""
    sim = simulate_acquisition("filaments", 128, photons=300, seed=seed, noise=False, offset=0.0)
    gains = np.exp(-loss_per_frame * np.arange(9)).reshape(3, 3)
    rng = np.random.default_rng(100 + seed)
    frames = rng.poisson(sim.raw * gains[..., None, None]) + OFFSET + rng.normal(0.0, 1.0, sim.raw.shape)
    return frames.astype(np.float32), sim


@pytest.mark.slow
def test_phase_steps_survive_strong_bleaching():
    """A 10 % loss per frame (60 % over the 9 frames): the fitted per-frame gains keep the phase steps
    right. Measured on seeds 0-5: worst step error 0.045-0.09 rad, mean 0.067; the same estimator
    with the gains held at 1 gives 0.06-0.15 rad, mean 0.118 (so this test fails without the gain fit)."""
    worst = []
    for seed in range(6):
        frames, sim = bleached(seed, 0.1)
        res = estimate_pattern(frames, sim.optics, background=OFFSET)
        worst.append(step_error(sim.params, res.params))
        for a, e in matched(sim.params, res.params):
            assert abs(e.k_magnitude - a.k_magnitude) / a.k_magnitude < 0.002
    assert max(worst) < 0.12, worst
    assert np.mean(worst) < 0.085, worst
