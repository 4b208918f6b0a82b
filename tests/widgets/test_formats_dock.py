"""Files opened through the plugin's reader in a real viewer: a lazy raw z-stack whose z step becomes
the z scale of the dock's layers, and a batch OME-Zarr output with the right scale."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import tifffile

from napari_sim_ml._qt import SimWidget
from napari_sim_ml.batch import build_parser, run_batch
from napari_sim_ml.engine.io import FrameLayout, write_tiff

from ..test_batch import timelapse


@pytest.fixture(scope="module")
def zstack(tmp_path_factory):
    root = tmp_path_factory.mktemp("dockz")
    frames, optics = timelapse(3, size=64)
    meta = {"kind": "raw", "optics": asdict(optics), "layout": asdict(FrameLayout(3, 3, 3, "PAZ")),
            "camera_offset": 100.0}
    return write_tiff(root / "z3.tif", frames, optics.pixel_size_um, meta, z_step_um=0.125), optics


@pytest.mark.slow
def test_a_lazy_z_stack_gives_dock_layers_with_its_z_step(make_napari_viewer_proxy, wait, notes, zstack, tmp_path):
    path, optics = zstack
    viewer = make_napari_viewer_proxy()
    layer, = viewer.open(str(path), plugin="napari-sim-ml")
    assert hasattr(layer.data, "dask")  # opened lazily
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert (w.controls.n_z.value, w.controls.angles.value) == (3, 3)
    w.reconstruct_all()
    wait(w)
    stack = viewer.layers["z3 SIM all planes"]
    assert stack.data.shape == (3, 1, 128, 128)
    assert tuple(stack.scale) == pytest.approx((0.125, 27.0, optics.pixel_size_um / 2, optics.pixel_size_um / 2))
    assert str(stack.units[0]) == "micrometer"
    w.controls.reconstruct.changed.emit()  # the single-plane layers exist too, as before
    wait(w)
    viewer.layers["z3 SIM"].visible = False  # export writes what is on screen: here the all-planes stack
    paths = w.export(tmp_path / "out.tif")
    assert paths is not None
    with tifffile.TiffFile(paths[0]) as tif:
        assert tif.series[0].shape == (3, 128, 128)
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.125)  # exported with its z step
    from napari_sim_ml.engine.io import read_raw
    from napari_sim_ml.engine.omezarr import validate_omezarr

    zpaths = w.export(tmp_path / "outz.ome.zarr")  # OME-Zarr export: the same planes, valid NGFF, z scale
    assert zpaths is not None and zpaths[0].endswith("outz.ome.zarr")
    assert validate_omezarr(zpaths[0]) == "0.5"
    back = read_raw(zpaths[0], require_frames=False)
    assert back.z_step_um == pytest.approx(0.125) and back.pixel_size_um == pytest.approx(optics.pixel_size_um / 2)
    np.testing.assert_array_equal(back.frames, tifffile.imread(paths[0]))
    assert not [m for m in notes() if "fail" in m or "error" in m.lower()]


def test_napari_opens_batch_ome_zarr_with_the_right_scale(make_napari_viewer_proxy, zstack, tmp_path):
    path, optics = zstack
    args = build_parser().parse_args([str(path), "-o", str(tmp_path), "--format", "ome-zarr", "--no-progress"])
    assert run_batch(args) == 0
    viewer = make_napari_viewer_proxy()
    layer, = viewer.open(str(tmp_path / "z3_sim.ome.zarr"), plugin="napari-sim-ml")
    assert layer.data.shape == (3, 128, 128)
    assert tuple(layer.scale) == pytest.approx((0.125, optics.pixel_size_um / 2, optics.pixel_size_um / 2))
    assert [str(u) for u in layer.units] == ["micrometer"] * 3
    assert np.isfinite(np.asarray(layer.data[1])).all()
