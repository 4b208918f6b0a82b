"""'Apply step 2 (may distort structures)' in a real viewer: its own layer, the warning, refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui
RAW = "SIM raw 3x3"


def tiny_step2(job, params, path):
    from napari_sim_ml.engine.denoise.step2 import step2_set
    from napari_sim_ml.engine.denoise.step2_train import train_step2
    from napari_sim_ml.engine.denoise.train import TrainSettings

    ts = step2_set(job.optics, params, 4, 48, (100.0, 100.0), ("filaments",), seed=2)
    train_step2(ts, job.optics, params, TrainSettings(epochs=1, steps_per_epoch=6, batch=4, patch=32, width=8,
                                                      depth=2, threads=1, validation=4), checkpoint=path)
    return path


@pytest.mark.slow
def test_step2_adds_its_own_layer_beside_the_plain_reconstruction(sim_viewer, wait, notes, qtbot, tmp_path):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    job, params, base = w.context()
    panel = w.denoiser
    panel.step2_model.value = str(tiny_step2(job, params, tmp_path / "s2.pt"))
    panel.step2.value = True
    assert "may distort structures" in panel.step2.text
    w.controls.reconstruct.native.click()  # the dock's own button
    wait(w)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    names = [la.name for la in viewer.layers]
    assert f"{RAW} SIM" in names and f"{RAW} SIM step 2" in names and f"{RAW} SIM step 2 flags" in names
    plain, s2 = viewer.layers[f"{RAW} SIM"], viewer.layers[f"{RAW} SIM step 2"]
    assert s2.data.shape == plain.data.shape == (512, 512)
    assert tuple(s2.scale) == pytest.approx(tuple(plain.scale)) and not np.array_equal(s2.data, plain.data)
    assert s2.metadata["napari_sim_ml"]["step2"]["warning"] == "step 2 can distort true structures"
    assert np.array_equal(plain.data, w.session.image)  # the plain reconstruction is not replaced
    assert sum("distort true structures" in n and "needles" in n for n in notes()) == 1  # the warning, once
    assert "re-imaged against the frames" in panel.status.text()


def test_a_step1_model_is_refused_as_step2_and_a_missing_file_named(sim_viewer, wait, notes, qtbot, tmp_path):
    from napari_sim_ml.engine.denoise.checkpoint import DenoiserMeta, save_checkpoint
    from napari_sim_ml.engine.denoise.model import DenoiseNet, NetConfig

    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    job, params, _ = w.context()
    panel = w.denoiser
    panel.step2.value = True
    panel.step2_model.value = str(tmp_path / "none.pt")
    assert panel.on_reconstruct() is None and any("no step-2 model at" in n for n in notes())
    cfg = NetConfig(9, 8, 2)
    step1 = save_checkpoint(tmp_path / "s1.pt", DenoiserMeta(job.optics, params, 1.0, 1.0, 5.0, cfg.to_dict()),
                            DenoiseNet(cfg).state_dict())
    panel.step2_model.value = str(step1)
    assert panel.on_reconstruct() is not None
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    assert any("is a step-1 model" in n for n in notes())
    assert f"{RAW} SIM step 2" not in [la.name for la in viewer.layers]


@pytest.mark.slow
def test_step1_then_step2_adds_the_denoised_step2_layer(sim_viewer, wait, notes, qtbot, tmp_path):
    from napari_sim_ml.engine.denoise.checkpoint import DenoiserMeta, save_checkpoint
    from napari_sim_ml.engine.denoise.model import DenoiseNet, NetConfig

    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    job, params, _ = w.context()
    panel = w.denoiser
    cfg = NetConfig(9, 8, 2)  # an untrained step 1 is the identity: enough to chain the two steps
    panel.model.value = str(save_checkpoint(tmp_path / "s1.pt", DenoiserMeta(job.optics, params, 1.0, 1.0, 5.0,
                                                                             cfg.to_dict()),
                                            DenoiseNet(cfg).state_dict()))
    panel.step2_model.value = str(tiny_step2(job, params, tmp_path / "s2.pt"))
    panel.apply.value = panel.step2.value = True
    w.controls.reconstruct.native.click()
    wait(w)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    names = [la.name for la in viewer.layers]
    assert f"{RAW} denoised SIM" in names and f"{RAW} denoised SIM step 2" in names, names
    s2 = viewer.layers[f"{RAW} denoised SIM step 2"]
    assert s2.metadata["napari_sim_ml"]["step2"]["after_step1"] is True
    assert not np.array_equal(s2.data, viewer.layers[f"{RAW} denoised SIM"].data)
    assert "trained without a step-1 denoiser" in panel.status.text()  # the note on the chain
    assert sum("needles" in n for n in notes()) == 1


def test_step2_trains_in_the_dock_with_a_loss_curve(sim_viewer, wait, notes, qtbot, tmp_path):
    from napari_sim_ml._qt.denoiser import STEP2_SOURCE
    from napari_sim_ml.engine.denoise.checkpoint import load_checkpoint

    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    panel = w.denoiser
    panel.source.value = STEP2_SOURCE
    panel.step2_model.value = str(tmp_path / "dock_s2.pt")
    panel.model.value = str(tmp_path / "untouched.pt")
    panel.epochs.value, panel.steps.value = 2, 3
    worker = panel.train(patch=32, width=8, depth=2)
    assert worker is not None
    qtbot.waitUntil(lambda: not panel.busy, timeout=120_000)
    assert len(panel.curve.train) == 6 and len(panel.curve.val) == 2
    meta = load_checkpoint(tmp_path / "dock_s2.pt", kind="step2")[0]
    assert meta.kind == "step2" and meta.step2["filter"]["settings"]["wiener"] == w.controls.filter_settings().wiener
    assert not (tmp_path / "untouched.pt").exists()  # the step-1 model file is not written
    assert any("needles" in n for n in notes()) and "wrote dock_s2.pt" in panel.status.text()
