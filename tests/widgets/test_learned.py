"""The learned-reconstruction (PINN) panel in a real viewer: run, preview, result layers, cancel."""

from __future__ import annotations

import numpy as np
import pytest

RAW = "SIM raw 3x3"


def wait_pinn(qtbot, panel, timeout=120_000):
    qtbot.waitUntil(lambda: panel.worker is None, timeout=timeout)


def test_pinn_needs_parameters_first(sim_viewer, notes):
    viewer, w = sim_viewer
    assert w.learned.run() is None
    assert any("estimate the pattern first" in n for n in notes())


@pytest.mark.slow
def test_pinn_fit_places_image_uncertainty_and_residual_layers(sim_viewer, wait, notes, qtbot):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    panel = w.learned
    panel.iterations.value = 12
    panel.samples.value = 2
    losses = []
    worker = panel.run()
    assert worker is not None
    worker.yielded.connect(lambda p: losses.append(p.loss))
    wait_pinn(qtbot, panel)
    raw = viewer.layers[RAW]
    image = viewer.layers[f"{RAW} PINN"]
    assert image.data.shape == (512, 512)
    np.testing.assert_allclose(image.scale[-2:], np.asarray(raw.scale[-2:]) / 2)
    np.testing.assert_allclose(image.translate[-2:], raw.translate[-2:])
    sigma = viewer.layers[f"{RAW} PINN uncertainty σ"]
    assert sigma.data.shape == (512, 512) and np.isfinite(sigma.data).all()
    # a σ map, not zeros or noise: positive, and small against the image's own range
    assert 0 < np.median(sigma.data) < 0.2 * float(np.ptp(image.data))
    residual = viewer.layers[f"{RAW} PINN residual"]
    assert residual.data.shape == (256, 256)
    assert f"{RAW} PINN preview" not in [layer.name for layer in viewer.layers]
    assert image.metadata["napari_sim_ml"]["method"] == "pinn"
    run = image.metadata["napari_sim_ml"]["pinn"]  # the schema's pinn block: what was asked and what ran
    assert run["mode"] == panel.mode.value and run["seed"] == panel.seed.value
    assert run["iterations"] == panel.iterations.value and 1 <= run["iterations_run"] <= run["iterations"]
    assert run["device"] == "cpu" and run["seconds"] > 0
    assert len(losses) >= 5 and np.isfinite(losses).all()
    assert "steps in" in panel.status.text()


@pytest.mark.slow
def test_cancel_stops_the_fit_and_leaves_the_viewer_working(sim_viewer, wait, notes, qtbot):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    panel = w.learned
    panel.iterations.value = 2000
    panel.samples.value = 0
    worker = panel.run()
    qtbot.waitUntil(lambda: "step" in panel.status.text(), timeout=60_000)
    panel.cancel()
    wait_pinn(qtbot, panel)
    assert f"{RAW} PINN" not in [layer.name for layer in viewer.layers]
    assert any("cancelled" in n for n in notes())
    assert panel.run_button.enabled
    w.reconstruct()  # the rest of the dock still works
    wait(w)
    assert f"{RAW} SIM" in [layer.name for layer in viewer.layers]
    del worker
