"""The realistic-mismatch simulator: each imperfection alone does what it says; all off is the clean case."""

from dataclasses import fields

import numpy as np
import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.mismatch import EXTRA, STRIPE_PERIOD_PX, TYPICAL, Imperfections
from napari_sim_ml.engine.parameters import AnglePattern, PatternParameters
from napari_sim_ml.engine.simulate import simulate_acquisition

SIZE = 96


def _sim(imp=None, **kw):
    kw = {"size": SIZE, "photons": 1000.0, "seed": 5, "noise": False, **kw}
    return simulate_acquisition("filaments", imperfections=imp, **kw)


@pytest.fixture(scope="module")
def clean():
    return _sim()


@pytest.mark.slow
def test_all_off_is_the_clean_case_bit_for_bit(clean):
    for noise in (False, True):
        a = _sim(noise=noise)
        b = _sim(Imperfections(), noise=noise)
        assert np.array_equal(a.raw, b.raw) and np.array_equal(a.truth, b.truth)
        assert b.given_params is None and b.reconstruction_params == a.params


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TYPICAL))
def test_each_imperfection_alone_changes_the_frames_and_keeps_the_scene(clean, name):
    sim = _sim(Imperfections.only(name))
    changed = not np.allclose(sim.raw, clean.raw, atol=1e-3)
    assert changed if name not in ("k_error", "phase_error") else not changed
    assert sim.params == clean.params  # the data's pattern is the clean one
    if name != "border_structure":
        assert np.array_equal(sim.truth, clean.truth)


def test_intensity_fluctuation_scales_each_frame(clean):
    sim = _sim(Imperfections(intensity_fluctuation=0.1))
    ratio = (sim.raw - sim.offset).sum(axis=(-2, -1)) / (clean.raw - clean.offset).sum(axis=(-2, -1))
    np.testing.assert_allclose(ratio, sim.frame_gains, rtol=1e-4)
    assert np.all(np.abs(sim.frame_gains - 1) <= 0.1) and sim.frame_gains.std() > 0.02


def test_k_and_phase_errors_are_in_the_given_parameters_only(clean):
    sim = _sim(Imperfections(k_error=0.004, phase_error=0.05))
    for true, given in zip(sim.params.angles, sim.reconstruction_params.angles, strict=False):
        rel = abs(np.hypot(*given.k_cycles_per_um) / true.k_magnitude - 1)
        assert rel == pytest.approx(0.004, rel=1e-6)
        turn = abs(np.angle(complex(*given.k_cycles_per_um) / complex(*true.k_cycles_per_um)))
        assert turn == pytest.approx(0.004, rel=1e-3)
        err = np.angle(np.exp(1j * (np.array(given.phases_rad) - np.array(true.phases_rad))))
        assert 0 < np.abs(err).max() < 0.25


def test_otf_mismatch_removes_high_frequencies(clean):
    sim = _sim(Imperfections(otf_mismatch=0.5))
    def high(raw):
        spec = np.abs(np.fft.fft2(raw[0, 0] - raw[0, 0].mean()))
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(SIZE), np.fft.fftfreq(SIZE), indexing="ij"))
        return spec[(f > 0.2) & (f < 0.4)].sum() / spec[(f > 0.02) & (f < 0.08)].sum()
    assert high(sim.raw) < 0.75 * high(clean.raw)


def test_envelope_modulation_background_and_stripe(clean):
    env = _sim(Imperfections(envelope=0.3))
    ratio = (env.raw - 100).mean(axis=(0, 1)) / np.maximum((clean.raw - 100).mean(axis=(0, 1)), 1e-6)
    ok = (clean.raw - 100).mean(axis=(0, 1)) > 50
    assert ratio[ok].min() / ratio[ok].max() < 0.9  # smooth fall-off across the field (max: photons rescale)
    haze = _sim(Imperfections(background=0.3))
    added = (haze.raw - clean.raw).mean()
    assert added == pytest.approx(300.0, rel=0.1)
    stripe = _sim(Imperfections(stripe=0.01))
    diff = stripe.raw - clean.raw
    np.testing.assert_allclose(diff, np.broadcast_to(diff[0, 0], diff.shape), atol=1e-3)  # fixed pattern
    spec = np.abs(np.fft.fft2(diff[0, 0]))
    fy, fx = np.unravel_index(np.argmax(spec), spec.shape)
    f = np.hypot(*(np.minimum(v, SIZE - v) / SIZE for v in (fy, fx)))
    assert f == pytest.approx(1 / STRIPE_PERIOD_PX, abs=1.0 / SIZE)
    assert np.abs(diff).max() == pytest.approx(10.0, rel=0.05)


def test_harmonic_shows_at_2k_and_modulation_varies():
    pattern = PatternParameters(tuple(AnglePattern((1.2 * np.cos(t), 1.2 * np.sin(t)),
                                                   (0.0, 2.1, 4.2), (0.8,)) for t in (0.1, 1.15, 2.2)))
    flat = np.ones((2 * SIZE, 2 * SIZE), dtype=np.float32)
    kw = dict(params=pattern, truth=flat)
    base, harm = _sim(**kw), _sim(Imperfections(harmonic=0.1), **kw)
    frame = lambda s: s.raw[0, 0] - s.raw[0, 0].mean()  # noqa: E731
    px = base.optics.pixel_size_um
    y, x = np.mgrid[:SIZE, :SIZE] * px
    kx, ky = pattern.angles[0].k_cycles_per_um
    at = lambda img, b: abs(np.sum(img * np.exp(-2j * np.pi * b * (kx * x + ky * y))))  # noqa: E731
    assert at(frame(harm), 2) > 20 * at(frame(base), 2)
    mod = _sim(Imperfections(modulation_variation=0.5), **kw)
    amp = np.abs(mod.raw[0, 0] - mod.raw[0, 1])  # stripe contrast between two phases
    halves = [amp[:, : SIZE // 2].mean(), amp[:, SIZE // 2:].mean(), amp[: SIZE // 2].mean(), amp[SIZE // 2:].mean()]
    assert max(halves[0] / halves[1], halves[1] / halves[0], halves[2] / halves[3], halves[3] / halves[2]) > 1.15


def test_border_structure_crosses_the_edges(clean):
    sim = _sim(Imperfections(border_structure=1.0))
    edges = np.concatenate([sim.truth[0], sim.truth[-1], sim.truth[:, 0], sim.truth[:, -1]])
    assert (edges > 0.5).sum() >= 8 and sim.truth.max() <= 1.0
    assert (edges > 0.5).sum() > (np.concatenate([clean.truth[0], clean.truth[-1]]) > 0.5).sum()


def test_bad_strengths_are_refused():
    with pytest.raises(SimInputError):
        Imperfections(intensity_fluctuation=-0.1)
    with pytest.raises(SimInputError):
        Imperfections(envelope=1.5)
    with pytest.raises(SimInputError):
        Imperfections.only("wobble")
    assert len(TYPICAL) + len(EXTRA) == len(fields(Imperfections)) and Imperfections.typical().any
