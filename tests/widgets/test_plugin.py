"""Manifest, plugin dock and menu command, sample data in the viewer, settings persistence, screenshot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from napari_sim_ml._qt import SimWidget

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_valid_and_ids_prefixed():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-sim-ml")
    ids = [c.id for c in manifest.contributions.commands]
    assert ids and all(i.startswith("napari-sim-ml.") for i in ids)
    assert {s.key for s in manifest.contributions.sample_data} == {"sim-2beam", "sim-3beam"}
    npe2 = shutil.which("npe2") or str(Path(os.sys.executable).with_name("npe2"))
    out = subprocess.run([npe2, "validate", "napari-sim-ml"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0 and "valid" in out.stdout, out.stdout + out.stderr


@pytest.mark.slow
def test_plugin_dock_and_menu_command(make_napari_viewer_proxy):
    from napari_sim_ml._qt._commands import open_for_selected_layer

    viewer = make_napari_viewer_proxy()
    layers = viewer.open_sample("napari-sim-ml", "sim-3beam")
    assert [layer.data.shape for layer in layers] == [(15, 256, 256), (512, 512)]
    _, widget = viewer.window.add_plugin_dock_widget("napari-sim-ml", "SIM reconstruction")
    assert isinstance(widget, SimWidget)
    assert widget.controls.phases.value == 5 and widget.controls.layer.value == "SIM raw 3x5"
    viewer.add_image(np.zeros((9, 64, 64), np.float32), name="other")
    viewer.layers.selection.active = viewer.layers["other"]
    open_for_selected_layer(viewer)
    assert widget.controls.layer.value == "other"
    assert widget.controls.phases.value == 3  # 9 frames: guessed 3 × 3


def test_settings_persist_between_sessions(make_napari_viewer_proxy, qtbot):
    """Preferences (OTF kind, sliders) persist; per-dataset values (optics, offset, layout) never do."""
    viewer = make_napari_viewer_proxy()
    first = SimWidget(viewer)
    settings_file = Path(os.environ["NAPARI_SIM_ML_SETTINGS"])
    first.controls.na.value = 1.2
    first.controls.wavelength_nm.value = 610.0
    first.controls.order.value = "APZ"
    first.controls.background.value = 100.0
    first.controls.wiener.value = 0.2
    first.controls.apo_bend.value = 1.3
    first.controls.otf.value = "attenuated"
    qtbot.waitUntil(lambda: settings_file.is_file() and "attenuated" in settings_file.read_text(), timeout=5000)
    qtbot.wait(400)  # written once the changes pause
    first.close()
    saved = settings_file.read_text()
    assert "na" not in json.loads(saved) and "background" not in json.loads(saved) and "APZ" not in saved
    second = SimWidget(viewer)
    c = second.controls
    assert (c.na.value, c.wavelength_nm.value, c.order.value, c.background.value) == (1.4, 525.0, "PAZ", 0.0)
    assert c.otf.value == "attenuated"
    assert c.wiener.value == pytest.approx(0.2, rel=0.01) and c.apo_bend.value == pytest.approx(1.3)
    second.close()


@pytest.mark.slow
def test_screenshot_after_reconstruction(make_napari_viewer, wait, tmp_path):
    """A shown viewer with the dock after a reconstruction renders a non-blank screenshot.

    With NAPARI_SIM_ML_SCREENSHOT=path the image is also saved there (docs/screenshot.png).
    """
    from skimage.io import imsave

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-sim-ml", "sim-2beam")
    widget = SimWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SIM reconstruction", area="right")
    widget.reconstruct()
    wait(widget)
    viewer.reset_view()
    image = viewer.screenshot(canvas_only=False, flash=False)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
    grey = image[..., :3].astype(float).mean(axis=-1)
    assert grey.std() > 10  # not blank
    canvas = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    assert canvas.std() > 5 and len(np.unique(canvas[..., 0])) > 50  # the SIM image is drawn
    imsave(tmp_path / "screenshot.png", image, check_contrast=False)
    target = os.environ.get("NAPARI_SIM_ML_SCREENSHOT")
    if target:
        imsave(target, image, check_contrast=False)
