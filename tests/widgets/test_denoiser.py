"""The trained-denoiser panel in a real viewer: train with a live loss curve, cancel, apply before Reconstruct."""

from __future__ import annotations

from pathlib import Path

import pytest

RAW = "SIM raw 3x3"


def wait_panel(qtbot, panel, timeout=120_000):
    qtbot.waitUntil(lambda: not panel.busy, timeout=timeout)


def test_training_needs_the_pattern_first(sim_viewer, notes, tmp_path):
    viewer, w = sim_viewer
    w.denoiser.model.value = str(tmp_path / "m.pt")
    assert w.denoiser.train() is None
    assert any("estimate the pattern first" in n for n in notes())


@pytest.mark.slow
def test_train_then_apply_before_reconstruct(sim_viewer, wait, notes, qtbot, tmp_path):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    panel = w.denoiser
    model = tmp_path / "m.pt"
    panel.model.value = str(model)
    panel.epochs.value, panel.steps.value = 2, 4
    worker = panel.train(patch=32, width=8, depth=2)
    assert worker is not None
    steps = []
    worker.yielded.connect(lambda p: steps.append(p.step))
    wait_panel(qtbot, panel)
    assert steps == list(range(1, 9))
    assert len(panel.curve.train) == 8 and len(panel.curve.val) == 2
    assert model.is_file() and "wrote m.pt" in panel.status.text()
    assert panel.train() is None and any("exists" in n for n in notes())  # no silent overwrite

    panel.apply.value = True
    w.controls.reconstruct.native.click()  # the dock's own button
    wait(w)
    wait_panel(qtbot, panel)
    den = viewer.layers[f"{RAW} denoised"]
    raw = viewer.layers[RAW]
    assert den.data.shape == raw.data.shape[-3:] or den.data.shape[0] == 9
    assert tuple(den.scale[-2:]) == tuple(raw.scale[-2:])
    sr = viewer.layers[f"{RAW} denoised SIM"]
    assert sr.data.shape == tuple(2 * s for s in raw.data.shape[-2:])
    assert f"{RAW} denoiser flags" in [la.name for la in viewer.layers]
    assert "normalised residual mean" in panel.status.text()


@pytest.mark.slow
def test_cancel_keeps_a_checkpoint(sim_viewer, wait, notes, qtbot, tmp_path):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    panel = w.denoiser
    panel.model.value = str(tmp_path / "c.pt")
    panel.epochs.value, panel.steps.value = 500, 4
    worker = panel.train(patch=32, width=8, depth=2)
    worker.yielded.connect(lambda p: panel.cancel() if p.step == 5 else None)
    wait_panel(qtbot, panel)
    assert any("cancelled" in n for n in notes())
    assert Path(tmp_path / "c.pt").is_file()
    assert len(panel.curve.train) < 50
