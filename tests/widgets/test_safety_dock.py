"""Issue 11, dock items in a real viewer: per-dataset values never leak between layers
(item 16), the w label (17), a failed estimate leaves no stale table or status (19)."""

from __future__ import annotations

import numpy as np

from napari_sim_ml.widgets import SimWidget
from napari_sim_ml.widgets._controls import NOT_FROM_FILE

RAW = "SIM raw 3x3"


def test_values_a_file_lacks_are_defaults_marked_not_kept_from_the_previous_layer(sim_viewer, notes, wait):
    viewer, w = sim_viewer
    c = w.controls
    assert NOT_FROM_FILE not in c.na.label  # the sample states its optics
    c.na.value, c.background.value, c.wavelength_nm.value = 1.2, 100.0, 610.0
    raw = np.asarray(viewer.layers[RAW].data, dtype=np.float32)
    viewer.add_image(raw / raw.max() * 0.009, name="bare")  # values ≈ 0.001, like the OMX data
    w.select_layer("bare")
    assert (c.na.value, c.wavelength_nm.value, c.background.value) == (1.4, 525.0, 0.0)
    for key in ("na", "wavelength_nm", "pixel_size_um", "background"):
        assert getattr(c, key).label.endswith(NOT_FROM_FILE), key
    c.background.value = 100.0  # an offset far above every pixel: warned before it runs
    w.estimate()
    wait(w)
    assert any("camera offset 100 is above most pixels" in m for m in notes())
    w.select_layer(RAW)
    assert NOT_FROM_FILE not in c.na.label and c.background.value == viewer.layers[RAW].metadata[
        "napari_sim_ml"].get("camera_offset", 0.0)


def test_wiener_label_shows_w_not_the_slider_position(sim_viewer):
    from qtpy.QtWidgets import QSlider

    _, w = sim_viewer
    wiener = w.controls.wiener
    wiener.value = 0.2
    assert wiener.label == "Wiener w = 0.2"
    slider = wiener.native.findChildren(QSlider)[0]
    slider.setValue(849)  # what a drag does: the label must show w, not the position 849
    shown = float(wiener.label.split("=")[1])
    assert shown == float(f"{wiener.value:.3g}") and 1e-3 <= shown <= 1.0


def test_failed_estimate_clears_the_table_and_says_so(make_napari_viewer_proxy, wait, notes):
    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-sim-ml", "sim-2beam")
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.estimate()
    wait(w)
    assert w.table.rowCount() == 3 and w.result is not None
    noise = np.random.default_rng(3).poisson(200.0, (9, 96, 96)).astype(np.uint16)
    viewer.add_image(noise, name="noise")
    w.select_layer("noise")
    assert w.table.rowCount() == 0  # the table described the other layer
    w.estimate()
    wait(w)
    assert w.table.rowCount() == 0 and w.result is None
    assert w.status.text().startswith("estimate failed: no illumination pattern detected")
    assert "estimating" not in w.status.text()


def test_export_includes_the_shown_pinn_image_sigma_and_residual(sim_viewer, wait, notes, tmp_path):
    from napari_sim_ml.engine.io import read_raw

    viewer, w = sim_viewer
    w.reconstruct()
    wait(w)
    sr = viewer.layers[f"{RAW} SIM"]
    for name, scale in (("PINN", sr.scale), ("PINN uncertainty σ", sr.scale),
                        ("PINN residual", viewer.layers[RAW].scale[-2:])):
        viewer.add_image(np.full((16, 16), 0.5, np.float32), name=f"{RAW} {name}", scale=scale)
    paths = w.export(tmp_path / "res.tif")
    assert paths is not None, notes()
    names = sorted(p.rsplit("/", 1)[1] for p in paths)
    assert names == ["res.tif", "res_params.json", "res_pinn.tif", "res_pinn_residual.tif", "res_pinn_sigma.tif",
                     "res_widefield.tif"]
    assert read_raw(tmp_path / "res_pinn_sigma.tif", require_frames=False).frames.shape == (16, 16)
