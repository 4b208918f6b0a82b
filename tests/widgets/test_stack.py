"""Stacks with extra planes: the current plane reconstructs live; "Reconstruct all" with progress and Cancel."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml.engine.io import read_raw
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

from .conftest import sample_stack_viewer

RAW = "SIM raw 3x3"


def _stack_viewer(make_viewer, n_planes: int):
    """A raw layer of ``n_planes`` planes (PAZ, plane k = the sample scaled by 1 / (k + 1))."""
    return sample_stack_viewer(make_viewer, "stack", lambda signal: [signal / (k + 1) for k in range(n_planes)],
                               n_z=n_planes)


@pytest.mark.slow
def test_current_plane_reconstructs_live(make_napari_viewer_proxy, wait, notes):
    viewer, w = _stack_viewer(make_napari_viewer_proxy, 2)
    assert (w.controls.n_z.value, w.controls.order.value) == (2, "PAZ")
    w.reconstruct()
    wait(w)
    sr = viewer.layers["stack SIM"]
    first = np.array(sr.data)
    n_layers = len(viewer.layers)
    viewer.dims.set_current_step(0, 12)  # a frame of the second plane
    wait(w)
    assert w.job.plane == 1 and len(viewer.layers) == n_layers
    raw = np.asarray(viewer.layers["stack"].data)
    expected = wiener_filter(prepare_reconstruction(raw[9:].reshape(3, 3, 256, 256), w.job.optics,
                                                    w.prepared.params, background=100.0),
                             w.controls.filter_settings())
    np.testing.assert_allclose(sr.data, expected, rtol=1e-4, atol=1e-3)
    assert np.abs(sr.data - first / 2).mean() < 0.01 * np.abs(first).mean()  # plane 1 = plane 0 / 2
    # sliders act on the plane shown
    w.controls.wiener.value = 0.3
    wait(w)
    np.testing.assert_allclose(sr.data, wiener_filter(w.prepared, w.controls.filter_settings()), atol=1e-4)
    viewer.dims.set_current_step(0, 3)
    wait(w)
    assert w.job.plane == 0
    assert not notes()


@pytest.mark.slow
def test_reconstruct_all_and_export(make_napari_viewer_proxy, wait, notes, tmp_path):
    viewer, w = _stack_viewer(make_napari_viewer_proxy, 2)
    worker = w.reconstruct_all()
    assert worker is not None and w.controls.cancel.enabled
    wait(w)
    assert not w.controls.cancel.enabled
    stack = viewer.layers["stack SIM all planes"]
    assert stack.data.shape == (2, 1, 512, 512)  # its own plane axis; one pixel spanning the 18 raw frames
    assert tuple(stack.scale) == pytest.approx((1.0, 18.0, 0.04, 0.04))
    ratio = np.abs(stack.data[1]).mean() / np.abs(stack.data[0]).mean()
    assert ratio == pytest.approx(0.5, rel=0.01)
    assert w.result is not None  # estimated on the way, shown in the table
    assert w.table.rowCount() == 3
    paths = w.export(tmp_path / "all.tif")  # right after Reconstruct all (issue 11: said "reconstruct first")
    assert paths is not None, notes()
    back = read_raw(paths[0], require_frames=False)
    assert back.frames.shape == (2, 512, 512) and back.pixel_size_um == pytest.approx(0.04)
    assert read_raw(paths[1], require_frames=False).frames.shape == (2, 512, 512)
    # the current plane reconstructed on top: export writes what is on screen, that plane
    w.reconstruct()
    wait(w)
    w.controls.wiener.value = 0.3
    wait(w)
    single = w.export(tmp_path / "one.tif")
    assert single is not None, notes()
    on_screen = np.asarray(viewer.layers["stack SIM"].data)
    np.testing.assert_allclose(read_raw(single[0], require_frames=False).frames, on_screen, atol=1e-6)
    viewer.layers["stack SIM"].visible = False  # only the stack shown: the stack is written
    again = w.export(tmp_path / "again.tif")
    assert read_raw(again[0], require_frames=False).frames.shape == (2, 512, 512)


@pytest.mark.slow
def test_reconstruct_all_cancel(make_napari_viewer_proxy, wait, notes):
    viewer, w = _stack_viewer(make_napari_viewer_proxy, 6)
    w.estimate()
    wait(w)
    worker = w.reconstruct_all()
    assert worker is not None
    w.cancel()  # takes effect at the next plane
    wait(w)
    assert "stack SIM all planes" not in [layer.name for layer in viewer.layers]
    assert any("cancelled" in m for m in notes())
    assert w.all_planes is None and w.controls.reconstruct_all.enabled
    # a second run goes to the end
    w.reconstruct_all()
    wait(w)
    assert viewer.layers["stack SIM all planes"].data.shape == (6, 1, 512, 512)
