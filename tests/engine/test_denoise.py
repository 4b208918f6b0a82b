"""The trained raw-frame denoiser: data, training, checkpoints, application, consistency check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_sim_ml.engine.denoise import check_compatible, consistency_check, simulated_set, thinned_set
from napari_sim_ml.engine.denoise.data import dihedral, make_bundles, sample_batch
from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.parameters import AnglePattern, Optics, PatternParameters
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition

OPTICS = Optics(1.4, 525.0, 0.08)
PARAMS = random_parameters(OPTICS, 3, 3, 1, rng=np.random.default_rng(3))
TINY = dict(width=8, depth=2, patch=32, batch=8, steps_per_epoch=40, lr=3e-3, threads=1, validation=8, augment=True,
            loss="mse")  # the raw-frame loss: the tests below compare raw frames; "recon": test_denoise_recon.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny denoiser trained for a few seconds on 60-photon filaments and rings."""
    from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser

    ts = simulated_set(OPTICS, PARAMS, 12, 48, (60.0, 60.0), ("filaments", "rings"), seed=1)
    path = tmp_path_factory.mktemp("den") / "tiny.pt"
    res = train_denoiser(ts, OPTICS, PARAMS, TrainSettings(epochs=3, **TINY), checkpoint=path)
    return res, path


def test_augmentation_moves_all_frames_together():
    stack = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4)
    for k in range(8):
        out = dihedral(stack, k)
        assert out.shape == stack.shape
        assert np.array_equal(out[1] - out[0], np.full((4, 4), 16.0))  # the same transform on each frame
    assert len({dihedral(stack, k).tobytes() for k in range(8)}) == 8


def test_simulated_set_has_the_users_pattern_and_photons():
    ts = simulated_set(OPTICS, PARAMS, 3, 48, (50.0, 50.0), ("bundles",), seed=0)
    assert ts.clean.shape == (3, 9, 48, 48)
    assert 45 < ts.clean.max() < 60  # peak photons at gain 1 (plus ≤ 5 % background)
    # the stripes of angle 0 sit at the user's k: the spectrum of frame 0 peaks there
    spec = np.abs(np.fft.fft2(ts.clean[0, 0] - ts.clean[0, 0].mean()))
    kx, ky = PARAMS.angles[0].k_cycles_per_um
    iy, ix = int(round(ky * 48 * 0.08)) % 48, int(round(kx * 48 * 0.08)) % 48
    assert spec[iy, ix] > 5 * np.median(spec)
    b = make_bundles((96, 96), 0.04, np.random.default_rng(0))
    assert b.max() == pytest.approx(1.0) and b.min() >= 0 and (b > 0.3).mean() > 0.01


def test_thinning_matches_the_noise_model():
    rng = np.random.default_rng(0)
    high = [rng.poisson(2000.0, (9, 48, 48)).astype(np.float64) * 2.0 + 100.0]  # gain 2, offset 100
    from napari_sim_ml.engine.pinn.noise import NoiseModel

    ts, noise = thinned_set(high, 20.0, 0.08, OPTICS.cutoff_cycles_per_um, background=100.0,
                            noise=NoiseModel(2.0, 4.0))
    assert ts.clean.mean() == pytest.approx(2000.0 * 2 / 20, rel=0.01)
    noisy, clean = sample_batch(ts, 16, 32, rng)
    assert noisy.mean() == pytest.approx(200.0, rel=0.02)
    assert np.var(noisy - clean) == pytest.approx(2.0 * 200.0 + 4.0, rel=0.1)  # Poisson through gain 2
    with pytest.raises(SimInputError, match="thinning factor"):
        thinned_set(high, 0.5, 0.08, 5.0)


@pytest.mark.slow
def test_loss_falls_and_the_tiny_model_beats_no_model(trained):
    from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_plane

    res, path = trained
    assert res.val_losses[-1] < 0.8 * res.val_losses[0]
    den = Denoiser.load(path)
    rmse_noisy, rmse_den = [], []
    for seed, structure in ((11, "mesh"), (12, "filaments")):  # held out: other seeds and a new structure
        noisy = simulate_acquisition(structure, 64, OPTICS, params=PARAMS, photons=60, seed=seed)
        clean = simulate_acquisition(structure, 64, OPTICS, params=PARAMS, photons=60, seed=seed, noise=False)
        out = denoise_plane(noisy.raw, den, OPTICS, PARAMS, background=100.0)
        rmse_noisy.append(np.sqrt(np.mean((noisy.raw - clean.raw) ** 2)))
        rmse_den.append(np.sqrt(np.mean((out - clean.raw) ** 2)))
    assert np.mean(rmse_den) < 0.85 * np.mean(rmse_noisy)


@pytest.mark.slow
def test_checkpoint_round_trips(trained, tmp_path):
    import torch

    from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_frames
    from napari_sim_ml.engine.denoise.checkpoint import load_checkpoint

    res, path = trained
    meta, weights, opt_state, state = load_checkpoint(path)
    assert meta == res.meta
    assert meta.optics == OPTICS and meta.params == PARAMS
    assert meta.training["source"] == "simulation" and meta.training["epochs"] == 3
    assert opt_state is not None and state["epochs_done"] == 3
    assert all(torch.equal(weights[k], res.weights[k]) for k in res.weights)
    x = np.random.default_rng(0).poisson(30.0, (1, 9, 40, 40)).astype(np.float32)
    a = denoise_frames(x, Denoiser.load(path), threads=1)
    b = denoise_frames(x, Denoiser.from_weights(res.meta, res.weights), threads=1)
    assert np.array_equal(a, b)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(SimInputError, match="not a readable denoiser"):
        Denoiser.load(bad)


@pytest.mark.slow
def test_tiles_agree_with_the_whole_plane(trained):
    from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_frames

    den = Denoiser.load(trained[1])
    x = np.random.default_rng(1).poisson(40.0, (1, 9, 96, 96)).astype(np.float32)
    whole = denoise_frames(x, den, tile=96, threads=1)
    tiled = denoise_frames(x, den, tile=48, overlap=16, threads=1)
    assert np.abs(tiled - whole)[..., 8:-8, 8:-8].max() < 0.05 * np.abs(whole).max()


def test_mismatched_data_are_refused():
    from napari_sim_ml.engine.denoise.checkpoint import DenoiserMeta

    meta = DenoiserMeta(OPTICS, PARAMS, 1.0, 1.0, 5.0, {"n_frames": 9, "width": 8, "depth": 2})
    check_compatible(meta, OPTICS, PARAMS)
    rotated = PatternParameters(tuple(AnglePattern((-a.k_cycles_per_um[1], a.k_cycles_per_um[0]), a.phases_rad,
                                                   a.modulation).canonical() for a in PARAMS.angles))
    check_compatible(meta, OPTICS, rotated)  # a 90° rotation is part of the training augmentation
    fixed = replace(meta, training={"augment": False})
    with pytest.raises(SimInputError, match="angles"):
        check_compatible(fixed, OPTICS, rotated)  # not when trained without it
    with pytest.raises(SimInputError, match="pixel size 0.08 but the data have 0.1"):
        check_compatible(meta, replace(OPTICS, pixel_size_um=0.1), PARAMS)
    longer = PatternParameters(tuple(AnglePattern(tuple(1.1 * k for k in a.k_cycles_per_um), a.phases_rad,
                                                  a.modulation) for a in PARAMS.angles))
    with pytest.raises(SimInputError, match="period differs"):
        check_compatible(meta, OPTICS, longer)
    turned = PatternParameters(tuple(AnglePattern((a.k_magnitude * np.cos(np.radians(a.angle_deg + 20)),
                                                   a.k_magnitude * np.sin(np.radians(a.angle_deg + 20))),
                                                  a.phases_rad, a.modulation) for a in PARAMS.angles))
    with pytest.raises(SimInputError, match="angles"):
        check_compatible(meta, OPTICS, turned)
    swapped = PatternParameters(tuple(AnglePattern(a.k_cycles_per_um, (a.phases_rad[0], a.phases_rad[2],
                                                                       a.phases_rad[1]), a.modulation)
                                      for a in PARAMS.angles))
    with pytest.raises(SimInputError, match="phase steps"):
        check_compatible(meta, OPTICS, swapped)
    with pytest.raises(SimInputError, match="3 angles × 3 phases but the data have 3 × 5"):
        check_compatible(meta, OPTICS, None, 3, 5)


@pytest.mark.slow
def test_training_resumes_and_cancels_with_a_checkpoint(tmp_path):
    from napari_sim_ml.engine.denoise.checkpoint import load_checkpoint
    from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser, train_steps

    ts = simulated_set(OPTICS, PARAMS, 4, 32, (60.0, 60.0), ("filaments",), seed=2)
    small = {**TINY, "steps_per_epoch": 5}
    path = tmp_path / "m.pt"
    train_denoiser(ts, OPTICS, PARAMS, TrainSettings(epochs=1, **small), checkpoint=path)
    res = train_denoiser(ts, OPTICS, PARAMS, TrainSettings(epochs=2, **small), checkpoint=path, resume=path)
    assert res.steps == 10 and len(res.losses) == 10 and len(res.val_losses) == 3
    gen = train_steps(ts, OPTICS, PARAMS, TrainSettings(epochs=5, **small), checkpoint=tmp_path / "c.pt")
    for _ in range(7):
        next(gen)
    gen.close()  # cancel
    meta, _, _, state = load_checkpoint(tmp_path / "c.pt")
    assert meta.training["cancelled"] is True and state["epochs_done"] == 1


def test_consistency_check_passes_noise_and_flags_invented_structure():
    clean = simulate_acquisition("filaments", 96, OPTICS, params=PARAMS, photons=200, seed=4, noise=False)
    noisy = simulate_acquisition("filaments", 96, OPTICS, params=PARAMS, photons=200, seed=4)
    good = consistency_check(noisy.raw, clean.raw, OPTICS, PARAMS, 1.0, 1.0, background=100.0)
    assert abs(good.mean) < 0.03 and abs(good.variance - 1.0) < 0.05
    assert good.flagged_fraction < 0.01 and np.all(good.k_power < 1.3)
    # a "denoiser" that erases the modulation (replaces every frame by the widefield of its angle)
    flat = np.repeat(clean.raw.mean(axis=1, keepdims=True), 3, axis=1)
    bad = consistency_check(noisy.raw, flat, OPTICS, PARAMS, 1.0, 1.0, background=100.0)
    assert np.all(bad.k_power > 2.0) and (bad.flags & 2).any()
    # one that invents a bright blob common to all frames
    blob = clean.raw.copy()
    blob[..., 40:46, 40:46] += 30.0
    inv = consistency_check(noisy.raw, blob, OPTICS, PARAMS, 1.0, 1.0, background=100.0)
    assert (inv.flags[40:46, 40:46] & 1).all() and (inv.flags[:30, :30] & 1).mean() < 0.01
    assert "normalised residual mean" in good.summary()


def test_importing_the_denoiser_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, napari_sim_ml.engine.denoise, napari_sim_ml.engine.denoise.train, "
            "napari_sim_ml.engine.denoise.apply, napari_sim_ml.denoise_cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
