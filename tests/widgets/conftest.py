"""Fixtures for widget tests in a real napari viewer (pytest-qt, Xvfb via pytest-xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

WAIT_MS = 60_000


@pytest.fixture
def notes():
    """Messages of napari notifications raised during the test (cleared first)."""
    from napari.utils.notifications import notification_manager

    notification_manager.records.clear()
    return lambda: [str(n.message) for n in notification_manager.records]


@pytest.fixture
def wait(qtbot):
    """wait(widget): block until the widget's workers are done (events keep flowing)."""

    def _wait(widget, timeout=WAIT_MS):
        qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)

    return _wait


@pytest.fixture
def sim_viewer(make_napari_viewer_proxy):
    """A viewer (proxy: raises if napari objects are changed off the main thread) with the
    2-beam sample opened through the plugin and the SIM dock added."""
    from napari_sim_ml._qt import SimWidget

    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-sim-ml", "sim-2beam")
    widget = SimWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SIM reconstruction")
    return viewer, widget


def sample_stack_viewer(make_viewer, name: str, planes_of, n_z: int, order: str | None = None):
    """A viewer holding the 3×3 sample as a stack of planes, with the SIM dock added: (viewer, dock).

    ``planes_of(signal)`` maps the sample's offset-free signal (float32 counts) to the planes'
    signals in stack order; each is stored as uint16 with the offset back on, and the layer's
    metadata says ``n_z`` planes (and ``order`` when given).
    """
    from napari_sim_ml._qt import SimWidget
    from napari_sim_ml._sample_data import make_sample

    frames, kwargs, _ = make_sample(3)[0]
    signal = frames.astype(np.float32) - 100.0
    planes = [np.rint(plane + 100.0).astype(np.uint16) for plane in planes_of(signal)]
    meta = kwargs["metadata"]["napari_sim_ml"]
    meta = {**meta, "layout": {**meta["layout"], "n_z": n_z, **({"order": order} if order else {})}}
    viewer = make_viewer()
    viewer.add_image(np.concatenate(planes), name=name, scale=kwargs["scale"], units=kwargs["units"],
                     metadata={"napari_sim_ml": meta})
    widget = SimWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def run(qtbot, wait, widget, start):
    """Start a widget action and wait for it; returns the worker (or None if refused)."""
    worker = start()
    wait(widget)
    return worker


def correlation_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sub-pixel shift (rows, cols) that registers b onto a."""
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(a, b, upsample_factor=50, normalization=None)
    return np.asarray(shift)
