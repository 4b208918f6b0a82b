"""Issue 11 item 22 (the OpenGL segfault): what reaches vispy from this plugin is safe — layers changed
on the main thread only, finite and increasing contrast limits, contiguous float32 textures, and data of
a new shape or dtype with contrast limits of its own."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_sim_ml._qt import _layers as L

GEO = {"scale": (0.5, 0.5), "translate": (0.0, 0.0), "units": ("um", "um")}


@pytest.mark.parametrize("data", [np.full((8, 8), np.nan, np.float32), np.ones((8, 8), np.float32),
                                  np.where(np.eye(16) > 0, np.inf, 2.0), np.full((8, 8), 1e20),
                                  np.zeros((0, 8), np.float32)])
def test_contrast_limits_are_finite_and_increasing(data):
    lo, hi = L.contrast_limits(data)
    assert np.isfinite(lo) and np.isfinite(hi) and hi > lo


def test_layers_are_changed_on_the_main_thread_only_with_safe_textures(make_napari_viewer_proxy):
    viewer = make_napari_viewer_proxy()
    layer = L.upsert_image(viewer, "out", np.arange(64.0).reshape(8, 8)[:, ::2], GEO)  # float64, strided
    assert layer.data.dtype == np.float32 and layer.data.flags.c_contiguous
    assert np.isfinite(layer.contrast_limits).all()
    errors = []

    def from_worker():
        for call in (lambda: L.upsert_image(viewer, "out", np.zeros((8, 4), np.float32), GEO),
                     lambda: L.update_data(layer, np.zeros((8, 4), np.float32))):
            try:
                call()
            except RuntimeError as exc:
                errors.append(str(exc))

    thread = threading.Thread(target=from_worker)
    thread.start()
    thread.join()
    assert errors == ["napari layers must be changed on the main thread"] * 2
    assert float(np.asarray(layer.data).max()) == 62.0  # untouched
    # a new shape (another dataset) gets its own contrast limits, not the previous range
    again = L.upsert_image(viewer, "out", np.full((16, 16), 1000.0, np.float32) + np.eye(16, dtype=np.float32), GEO)
    assert len(viewer.layers) == 1 and again.name == "out" and layer.data.shape == (16, 16)  # updated in place
    assert tuple(layer.contrast_limits) == L.contrast_limits(layer.data) and layer.contrast_limits[0] >= 1000.0
