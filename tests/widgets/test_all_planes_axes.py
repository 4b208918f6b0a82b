"""Issue 11 item 20: the all-planes result browses by its own plane slider(s), numbered as the status
text says, and stays shown wherever the raw frame slider is, for every frame order (PZA as on OMX)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_sim_ml._qt import SimWidget
from napari_sim_ml._qt._layers import plane_stack


def _pza_viewer(make_viewer, n_z: int):
    """A raw layer of ``n_z`` planes in PZA order (phase fastest, then z, then angle: OMX's order);
    plane k = the sample scaled by 1 / (k + 1)."""
    from napari_sim_ml._sample_data import make_sample

    frames, kwargs, _ = make_sample(3)[0]
    signal = frames.astype(np.float32) - 100.0
    a, p = 3, 3
    planes = np.stack([np.rint(signal / (k + 1) + 100.0).astype(np.uint16) for k in range(n_z)])  # (Z, A·P, Y, X)
    by_zap = planes.reshape(n_z, a, p, *frames.shape[-2:])
    file_order = by_zap.transpose(1, 0, 2, 3, 4).reshape(-1, *frames.shape[-2:])  # A slowest, Z, P fastest
    meta = kwargs["metadata"]["napari_sim_ml"]
    meta = {**meta, "layout": {**meta["layout"], "n_z": n_z, "order": "PZA"}}
    viewer = make_viewer()
    viewer.add_image(file_order, name="pza", scale=kwargs["scale"], units=kwargs["units"],
                     metadata={"napari_sim_ml": meta})
    widget = SimWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def _shown(layer) -> np.ndarray:
    with warnings.catch_warnings():  # the slice napari hands to vispy (private, read only here)
        warnings.simplefilter("ignore", FutureWarning)
        return np.asarray(layer._data_view)


@pytest.mark.slow
def test_all_planes_have_their_own_slider_numbered_as_the_status_says(make_napari_viewer_proxy, wait, notes,
                                                                     tmp_path):
    viewer, w = _pza_viewer(make_napari_viewer_proxy, 3)
    assert (w.controls.n_z.value, w.controls.order.value) == (3, "PZA")
    w.reconstruct_all()
    wait(w)
    stack = viewer.layers["pza SIM all planes"]
    assert stack.data.shape == (3, 1, 512, 512)
    assert viewer.dims.axis_labels[:2] == ("SIM z", "raw frame")
    images = w.all_planes.images
    ratios = [np.abs(images[k]).mean() / np.abs(images[0]).mean() for k in range(3)]
    assert ratios == pytest.approx([1, 1 / 2, 1 / 3], rel=0.02)  # plane k is the PZA stack's z plane k
    assert "shown: z 0 of 0–2" in w.status.text() and "'SIM z' slider" in w.status.text()
    for frame in (0, 4, 20, 26):  # the raw frame slider: the result stays shown (26 > its 3 planes)
        viewer.dims.set_current_step(1, frame)
        wait(w)
        np.testing.assert_array_equal(_shown(stack), images[0])
    for z in (2, 1):  # its own slider: the plane it shows is the one the status names
        viewer.dims.set_current_step(0, z)
        wait(w)
        np.testing.assert_array_equal(_shown(stack), images[z])
        assert f"shown: z {z} of 0–2" in w.status.text()
    assert viewer.dims.current_step[1] == 26  # the raw frame slider did not move
    # the current-plane result names its plane the same way: frame 4 of PZA is z 1 (a 0, p 1)
    viewer.dims.set_current_step(1, 4)
    w.reconstruct()
    wait(w)
    assert w.status.text().startswith("reconstructed z 1 of 0–2")
    np.testing.assert_allclose(np.asarray(viewer.layers["pza SIM"].data), images[1], atol=1e-3)
    assert not [m for m in notes() if "nconsistent units" in m or "fail" in m]
    # napari's File > Save Layers (the plugin writer) writes the planes as (Z, Y, X), without the spanning axis
    from napari_sim_ml._writer import write_layer
    from napari_sim_ml.engine.io import read_raw

    _, state, _ = stack.as_layer_data_tuple()
    write_layer(tmp_path / "all.tif", np.asarray(stack.data), state)
    np.testing.assert_array_equal(read_raw(tmp_path / "all.tif", require_frames=False).frames, images)


def test_time_and_z_planes_get_a_t_and_a_z_axis():
    from napari.layers import Image

    raw = Image(np.zeros((36, 8, 8), np.uint16), scale=(1.0, 0.1, 0.1), units=("pixel", "um", "um"))
    images = np.arange(4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16)  # (T·Z) planes, T = Z = 2
    geometry = {"scale": (0.05, 0.05), "translate": (0.0, 0.0), "units": ("um", "um")}
    data, geo = plane_stack(images, raw, geometry, n_z=2, z_step_um=0.2)
    assert data.shape == (2, 2, 1, 16, 16) and geo["axis_labels"] == ("SIM t", "SIM z", "raw frame", "y", "x")
    np.testing.assert_array_equal(data[1, 0, 0], images[2])  # t 1, z 0 = flat plane 2
    assert geo["scale"] == pytest.approx((1.0, 0.2, 36.0, 0.05, 0.05)) and geo["units"][:3] == ("pixel", "um", "pixel")
    # the spanning pixel covers raw frames 0…35: its centre at 17.5, half-width 18
    assert geo["translate"][2] == pytest.approx(17.5)
