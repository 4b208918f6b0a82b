
import numpy as np
import pytest

from napari_sim_ml.engine.errors import NoPatternError
from napari_sim_ml.engine.estimate import MIN_QUALITY, estimate_pattern
from napari_sim_ml.engine.io import FrameLayout, arrange_frames, read_raw
from napari_sim_ml.engine.parameters import Optics, wrap_phase


def errors(truth, estimate):
    """(max relative |k| error, max angle error °, max phase error rad, max modulation error)."""
    out = np.zeros(4)
    for a, e in zip(truth.angles, estimate.angles, strict=False):
        a, e = a.canonical(), e.canonical()
        out[0] = max(out[0], abs(e.k_magnitude - a.k_magnitude) / a.k_magnitude)
        out[1] = max(out[1], abs((e.angle_deg - a.angle_deg + 90) % 180 - 90))
        out[2] = max(out[2], max(abs(wrap_phase(x - y)) for x, y in zip(a.phases_rad, e.phases_rad, strict=False)))
        out[3] = max(out[3], max(abs(x - y) for x, y in zip(a.modulation, e.modulation, strict=False)))
    return out


@pytest.mark.slow
def test_two_beam_at_100_photons(sim_100):
    for sim in sim_100:
        res = estimate_pattern(sim.raw, sim.optics, background=sim.offset)
        k_err, angle_err, phase_err, mod_err = errors(sim.params, res.params)
        assert k_err < 0.002 and angle_err < 0.1
        assert phase_err < 0.06, f"phase error {phase_err:.3f} rad"  # regression guard; measured ≤ 0.052
        assert mod_err < 0.1
        assert all(d.quality > 2 * MIN_QUALITY for d in res.diagnostics)


def centre_phase_errors(truth, estimate, shape, pixel_um):
    """Per-frame phase error (rad) at the field centre r_c: φ + 2π k·r_c, each with its own k.

    The phase at the origin (the corner pixel) levers a tiny k error over half the field;
    the centre is where the reconstruction depends on the phase least on k."""
    centre = np.array(shape[::-1], dtype=float) / 2 * pixel_um  # (x, y) µm
    out = []
    for a, e in zip(truth.angles, estimate.angles, strict=False):
        a, e = a.canonical(), e.canonical()
        ca = 2 * np.pi * np.dot(a.k_cycles_per_um, centre)
        ce = 2 * np.pi * np.dot(e.k_cycles_per_um, centre)
        out += [abs(wrap_phase(pe + ce - pa - ca)) for pa, pe in zip(a.phases_rad, e.phases_rad, strict=False)]
    return np.array(out)


@pytest.mark.slow
def test_two_beam_phases_at_the_field_centre_within_0_05_rad(sim_100):
    worst = max(centre_phase_errors(s.params, estimate_pattern(s.raw, s.optics, background=s.offset).params,
                                    s.raw.shape[-2:], s.optics.pixel_size_um).max() for s in sim_100)
    assert worst < 0.05, f"worst centre phase error {worst:.3f} rad"


@pytest.mark.slow
def test_three_beam_at_100_photons(sim_3beam_100):
    for sim in sim_3beam_100:
        res = estimate_pattern(sim.raw, sim.optics, background=sim.offset)
        assert res.params.n_orders == 2
        k_err, angle_err, phase_err, mod_err = errors(sim.params, res.params)
        assert k_err < 0.002 and angle_err < 0.1
        assert phase_err < 0.05, f"phase error {phase_err:.3f} rad"
        assert mod_err < 0.1


def test_pure_noise_names_the_angle_and_its_quality():
    rng = np.random.default_rng(0)
    noise = rng.poisson(50, (3, 3, 128, 128)).astype(np.float32)
    with pytest.raises(NoPatternError, match=r"angle 0 .*quality \d"):
        estimate_pattern(noise, Optics(1.4, 525, 0.08))


def test_real_three_beam_stack_matches_its_notes(three_beam_plane):
    """NOTES.md: angles 13.8°, 134.7°, 74.3°; |k1| = 15.5 cycles per (128 native px) field."""
    plane = three_beam_plane("high")
    res = estimate_pattern(plane, Optics(1.49, 525.0, 0.06), background=90.0)
    for pattern, angle in zip(res.params.angles, (13.8, 134.7, 74.3), strict=False):
        assert abs(pattern.angle_deg - angle) < 1.0
        assert pattern.k_magnitude * 128 * 0.06 == pytest.approx(15.5, rel=0.01)


def test_real_omx_plane_matches_cudasirecon_angles_and_spacing(data_dir):
    raw = read_raw(data_dir / "omx-3d-sim-64px/raw.tif")
    plane = arrange_frames(raw.frames, FrameLayout(3, 5, 9, "PZA"))[0, 4]
    res = estimate_pattern(plane, Optics(1.42, 528.0, 0.08))
    expected = np.degrees([0.8043, 1.8555, -0.2388]) % 180
    for pattern, angle in zip(res.params.angles, expected, strict=False):
        assert abs(pattern.angle_deg - angle) < 1.0
        assert 1 / (2 * pattern.k_magnitude) == pytest.approx(0.2035, rel=0.01)


def test_low_snr_tirf_data_is_reported_as_untrustworthy(data_dir):
    raw = read_raw(data_dir / "tirf-sim-microtubules-lowsnr/MT.mrc")
    plane = arrange_frames(raw.frames, FrameLayout(3, 3))[0, 0]
    res = estimate_pattern(plane, Optics(1.3, 525.0, raw.pixel_size_um), background=100, require_pattern=False)
    assert all(d.grade == "inadequate" for d in res.diagnostics)
