"""Step 2 of the two-step method: training pairs, a tiny trained model, checkpoints, refusals, the check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_sim_ml.engine.denoise.checkpoint import DenoiserMeta
from napari_sim_ml.engine.denoise.data import random_object
from napari_sim_ml.engine.denoise.step2 import (
    WARNING,
    apply_step2,
    check_step2,
    load_step2,
    percentile_scale,
    step2_meta,
    step2_set,
)
from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.methods import MethodSettings, reconstruct_plane
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import Optics
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition

OPTICS = Optics(1.4, 525.0, 0.08)
PARAMS = random_parameters(OPTICS, 3, 3, 1, rng=np.random.default_rng(3))
WIENER = MethodSettings.from_flags()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny step-2 model trained for ~4 s on 60-photon filaments and rings."""
    from napari_sim_ml.engine.denoise.step2_train import train_step2
    from napari_sim_ml.engine.denoise.train import TrainSettings

    ts = step2_set(OPTICS, PARAMS, 12, 48, (60.0, 60.0), ("filaments", "rings"), seed=1)
    path = tmp_path_factory.mktemp("s2") / "step2.pt"
    settings = TrainSettings(epochs=3, steps_per_epoch=25, batch=8, patch=32, width=8, depth=2, lr=3e-3,
                             threads=1, validation=8, augment=True)
    return ts, train_step2(ts, OPTICS, PARAMS, settings, checkpoint=path), path


def held_out(structure: str, seed: int, photons: float = 60.0):
    truth = random_object(structure, (128, 128), OPTICS.pixel_size_um / 2, np.random.default_rng(seed))
    sim = simulate_acquisition(structure, 64, OPTICS, params=PARAMS, photons=photons, truth=truth, seed=seed)
    image = reconstruct_plane(sim.raw, OPTICS, PARAMS, ideal_otf(OPTICS), sim.offset, WIENER).image
    return sim, image, sim_passband_truth(sim.truth, OPTICS, PARAMS)


def test_training_pairs_are_the_reconstruction_and_its_passband_truth():
    ts = step2_set(OPTICS, PARAMS, 2, 40, (100.0, 100.0), ("mesh",), crop=8, seed=0)
    assert ts.inputs.shape == ts.targets.shape == (2, 48, 48)  # 2 × 40 − 2 × 16 px on the 2× grid
    assert ts.structures == ("mesh", "mesh") and ts.description["input"] == "wiener"
    for x, y in zip(ts.inputs, ts.targets, strict=True):
        assert 0.9 < float(np.corrcoef(x.ravel(), y.ravel())[0, 1]) < 0.999  # close, but noisy
        assert -0.2 < np.percentile(x, 2) < 0.2 and 0.8 < np.percentile(x, 99.9) < 1.2  # normalised input
    with pytest.raises(SimInputError, match="unknown structure 'bananas'"):
        step2_set(OPTICS, PARAMS, 1, 40, structures=("bananas",))
    with pytest.raises(SimInputError, match="flat"):
        percentile_scale(np.ones((32, 32)))


@pytest.mark.slow
def test_loss_falls_and_the_tiny_model_improves_a_held_out_case(trained):
    _, res, path = trained
    assert res.val_losses[0] == pytest.approx(1.0, abs=1e-6)  # the untrained network is the identity
    assert res.val_losses[-1] < 0.85 * res.val_losses[0]
    den = load_step2(path)
    gains = []
    for structure, seed in (("filaments", 12), ("rings", 13)):  # new seeds of the trained structures
        _, image, ref = held_out(structure, seed)
        out = apply_step2(image, den, threads=1)
        assert out.shape == image.shape and out.dtype == np.float32
        gains.append(compare_to_truth(out, ref, crop=8)[0] - compare_to_truth(image, ref, crop=8)[0])
    assert min(gains) > 0.3, gains


@pytest.mark.slow
def test_step2_checkpoint_round_trips_with_its_kind_and_filter(trained):
    import torch

    from napari_sim_ml.engine.denoise.apply import Denoiser
    from napari_sim_ml.engine.denoise.checkpoint import load_checkpoint

    _, res, path = trained
    meta, weights, opt_state, state = load_checkpoint(path, kind="step2")
    assert meta == res.meta and meta.kind == "step2" and meta.n_frames == 1
    assert meta.optics == OPTICS and meta.params == PARAMS
    assert meta.step2["filter"] == {"method": "wiener", "form": "wiener", "auto_wiener": True,
                                    "settings": meta.step2["filter"]["settings"]}
    assert meta.step2["after_step1"] is False and meta.training["structures"] == ["filaments", "rings"]
    assert opt_state is not None and state["epochs_done"] == 3
    assert all(torch.equal(weights[k], res.weights[k]) for k in res.weights)
    with pytest.raises(SimInputError, match="is a step-2 model .* use it as step 2"):
        Denoiser.load(path)  # the raw-frame applier refuses it


def test_old_step1_files_without_a_kind_load_as_step1(tmp_path):
    import torch

    from napari_sim_ml.engine.denoise.checkpoint import load_checkpoint, save_checkpoint
    from napari_sim_ml.engine.denoise.model import DenoiseNet, NetConfig

    cfg = NetConfig(9, 8, 2)
    meta = DenoiserMeta(OPTICS, PARAMS, 1.0, 1.0, 5.0, cfg.to_dict())
    path = save_checkpoint(tmp_path / "s1.pt", meta, DenoiseNet(cfg).state_dict())
    blob = torch.load(path, weights_only=True)
    assert blob["kind"] == "step1"
    del blob["kind"]  # as written before step 2 existed
    blob["version"] = 1
    torch.save(blob, path)
    loaded = load_checkpoint(path)[0]
    assert loaded.kind == "step1" and loaded.n_frames == 9
    with pytest.raises(SimInputError, match=r"is a step-1 model .*\(--denoiser\)"):
        load_step2(path)


def test_wrong_method_optics_or_pattern_is_refused_and_other_filters_noted():
    meta = step2_meta(OPTICS, PARAMS, {"n_frames": 1, "width": 8, "depth": 2}, WIENER, False,
                      {"augment": False})
    assert check_step2(meta, OPTICS, PARAMS, WIENER) == []
    with pytest.raises(SimInputError, match="pixel size 0.08 but the data have 0.1"):
        check_step2(meta, replace(OPTICS, pixel_size_um=0.1), PARAMS, WIENER)
    with pytest.raises(SimInputError, match="not on the pinn"):
        check_step2(meta, OPTICS, PARAMS, MethodSettings("pinn"))
    with pytest.raises(SimInputError, match="--filter wiener"):
        check_step2(meta, OPTICS, PARAMS, MethodSettings.from_flags(form="hifi"))
    other = PARAMS.angles[0].__class__(tuple(1.1 * k for k in PARAMS.angles[0].k_cycles_per_um),
                                       PARAMS.angles[0].phases_rad, PARAMS.angles[0].modulation)
    with pytest.raises(SimInputError, match="period differs"):
        check_step2(meta, OPTICS, replace(PARAMS, angles=(other, *PARAMS.angles[1:])), WIENER)
    notes = check_step2(meta, OPTICS, PARAMS, MethodSettings.from_flags(wiener=0.3, apo_bend=1.5), step1=True)
    assert len(notes) == 3 and "w 0.3" in notes[0] and "apo bend" in notes[1] and "without a step-1" in notes[2]
    assert "\n" not in WARNING and "needles" in WARNING


def test_reimaging_check_passes_the_truth_and_flags_a_moved_structure():
    from napari_sim_ml.engine.denoise.step2_check import step2_check

    sim, image, ref = held_out("filaments", 21)
    good = step2_check(ref, sim.raw, OPTICS, PARAMS, background=sim.offset, gain=1.0, var0=1.0)
    assert abs(good.report.mean) < 0.05 and 0.9 < good.report.variance < 1.1
    assert good.report.flagged_fraction < 0.01
    moved = step2_check(np.roll(ref, 3, axis=1), sim.raw, OPTICS, PARAMS, background=sim.offset, gain=1.0,
                        var0=1.0)
    assert moved.report.variance > 2.0 and moved.report.flagged_fraction > 0.3
    fitted = step2_check(ref, sim.raw, OPTICS, PARAMS, background=sim.offset)  # noise model fitted on the frames
    assert 0.8 < fitted.report.variance < 1.25 and "re-imaged" in fitted.summary()


def test_support_limit_removes_only_what_lies_beyond_the_sim_support():
    from napari_sim_ml.engine.denoise.step2 import support_limit

    n, px = 128, OPTICS.pixel_size_um / 2
    yy, xx = np.mgrid[:n, :n] * px
    cutoff = OPTICS.cutoff_cycles_per_um + max(a.k_magnitude for a in PARAMS.angles)
    f_in, f_out = 0.8 * cutoff, min(1.3 * cutoff, 0.45 / px)
    fi, fo = round(f_in * n * px) / (n * px), round(f_out * n * px) / (n * px)  # on the FFT grid
    inside, outside = np.cos(2 * np.pi * fi * xx), np.cos(2 * np.pi * fo * yy)
    out = support_limit((inside + outside).astype(np.float32), OPTICS, PARAMS)
    inner = (slice(16, -16), slice(16, -16))  # the border jumps' smooth part is kept, and decays inwards

    def rms(a):
        return float(np.sqrt(np.mean(a[inner] ** 2)))

    assert rms(out - inside) < 0.05 * rms(outside)  # ≥ 95 % of the out-of-support wave gone inside the field
    both = support_limit(np.stack([inside + outside, inside]), OPTICS, PARAMS)  # stacks too
    assert np.abs(both[0] - out).max() < 1e-5 and rms(both[1] - inside) < 0.05 * rms(outside)
