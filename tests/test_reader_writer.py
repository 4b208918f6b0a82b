"""npe2 reader, writer and sample data: pixel size, units, optics, layout and parameters survive."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_sim_ml._reader import napari_get_reader
from napari_sim_ml._sample_data import sample_2beam, sample_3beam
from napari_sim_ml._writer import pixel_size_from_meta, write_image, write_layer
from napari_sim_ml.engine.io import read_raw, write_tiff
from napari_sim_ml.engine.parameters import PatternParameters

KEY = "napari_sim_ml"


def _read(path):
    reader = napari_get_reader(str(path))
    assert reader is not None, path
    layers = reader(str(path))
    assert len(layers) == 1 and layers[0][2] == "image"
    return layers[0]


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello"), ("broken.tif", b"II*\x00garbage"),
                                           ("empty.mrc", b""), ("image.png", b"\x89PNG")])
def test_reader_returns_none_for_files_it_cannot_take(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert napari_get_reader(str(path)) is None


def test_reader_returns_none_for_other_inputs(tmp_path):
    assert napari_get_reader(str(tmp_path)) is None  # a folder
    assert napari_get_reader(str(tmp_path / "missing.tif")) is None
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    for p in (a, b):
        tifffile.imwrite(p, np.zeros((9, 32, 32), np.uint16))
    assert napari_get_reader([str(a), str(b)]) is None  # several files: not a single raw stack
    assert napari_get_reader([str(a)]) is not None
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((64, 64, 3), np.uint8), photometric="rgb")
    assert napari_get_reader(str(rgb)) is None


def test_imagej_tiff_with_plugin_metadata(tmp_path):
    frames = np.random.default_rng(0).integers(0, 4000, (15, 48, 40)).astype(np.uint16)
    meta = {"kind": "raw", "optics": {"na": 1.2, "wavelength_nm": 600.0, "pixel_size_um": 0.065},
            "layout": {"n_angles": 3, "n_phases": 5, "n_z": 1, "order": "PAZ"}, "camera_offset": 100.0}
    write_tiff(tmp_path / "raw.tif", frames, 0.065, meta)
    data, kwargs, _ = _read(tmp_path / "raw.tif")
    assert data.shape == (15, 48, 40) and data.dtype == np.uint16
    assert kwargs["scale"] == pytest.approx((1.0, 0.065, 0.065))
    assert kwargs["units"] == ("pixel", "um", "um")
    ours = kwargs["metadata"][KEY]
    assert ours["optics"] == pytest.approx({"na": 1.2, "wavelength_nm": 600.0, "pixel_size_um": 0.065})
    assert ours["layout"] == {"n_angles": 3, "n_phases": 5, "n_z": 1, "order": "PAZ"}
    assert ours["camera_offset"] == 100.0 and ours["source"].endswith("raw.tif")


def test_plain_imagej_and_ome_tiff_pixel_size_and_layout_guess(tmp_path):
    frames = np.zeros((9, 40, 40), np.uint16)
    frames[:, 5:20, 5:20] = 7
    tifffile.imwrite(tmp_path / "ij.tif", frames, imagej=True, resolution=(1 / 0.1, 1 / 0.1),
                     metadata={"unit": "um", "axes": "ZYX"})
    _, kwargs, _ = _read(tmp_path / "ij.tif")
    assert kwargs["scale"][-1] == pytest.approx(0.1)
    assert kwargs["metadata"][KEY]["layout"] == {"n_angles": 3, "n_phases": 3, "n_z": 1, "order": "PAZ"}
    assert kwargs["metadata"][KEY]["optics"]["na"] is None  # the file does not say
    tifffile.imwrite(tmp_path / "ome.ome.tif", frames, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 72.0, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 72.0, "PhysicalSizeYUnit": "nm"})
    _, kwargs, _ = _read(tmp_path / "ome.ome.tif")
    assert kwargs["scale"][-2:] == pytest.approx((0.072, 0.072))
    tifffile.imwrite(tmp_path / "bare.tif", frames[:7])  # no pixel size, no usual layout
    data, kwargs, _ = _read(tmp_path / "bare.tif")
    assert "scale" not in kwargs and kwargs["metadata"][KEY]["layout"] is None and data.shape[0] == 7


def test_mrc(tmp_path):
    mrcfile = pytest.importorskip("mrcfile")
    frames = np.random.default_rng(1).random((9, 32, 32)).astype(np.float32)
    with mrcfile.new(tmp_path / "raw.mrc") as mrc:
        mrc.set_data(frames)
        mrc.voxel_size = 800.0  # Å
    data, kwargs, _ = _read(tmp_path / "raw.mrc")
    assert data.shape == (9, 32, 32) and kwargs["scale"][-1] == pytest.approx(0.08)


@pytest.mark.slow
def test_writer_reader_round_trip_keeps_pixel_size_and_parameters(tmp_path):
    (frames, raw_kwargs, _), _ = sample_2beam()
    written = write_image(str(tmp_path / "raw_copy.tif"), frames, {**raw_kwargs, "units": ("pixel", "um", "um")})
    data, kwargs, _ = _read(written[0])
    np.testing.assert_array_equal(data, frames)
    assert kwargs["scale"] == pytest.approx(raw_kwargs["scale"])
    before = raw_kwargs["metadata"][KEY]
    after = kwargs["metadata"][KEY]
    assert PatternParameters.from_dict(after["params"]) == PatternParameters.from_dict(before["params"])
    assert after["layout"] == before["layout"] and after["camera_offset"] == before["camera_offset"]
    # a reconstruction-like 2-D layer whose scale is in nm: written in µm
    sr = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    meta = {"scale": (40.0, 40.0), "units": ("nanometer", "nanometer"), "name": "sr",
            "metadata": {KEY: {"kind": "reconstruction", "params": before["params"]}}}
    assert pixel_size_from_meta(meta) == pytest.approx(0.04)
    path = write_layer(tmp_path / "sr", sr, meta)[0]
    assert path.endswith("sr.tif")
    back = read_raw(path, require_frames=False)
    assert back.pixel_size_um == pytest.approx(0.04)
    assert back.extra["params"] == before["params"] and back.extra["layer_name"] == "sr"
    data, kwargs, _ = _read(path)
    assert kwargs["scale"] == pytest.approx((0.04, 0.04)) and data.dtype == np.float32


def test_writer_through_napari_layerlist(tmp_path):
    from napari.components import ViewerModel
    from npe2 import PluginManager

    PluginManager.instance().discover()  # a bare ViewerModel does not load the plugins itself
    viewer = ViewerModel()
    layer = viewer.add_image(np.ones((16, 16), np.float32), scale=(0.05, 0.05), units=("um", "um"),
                             metadata={KEY: {"params": {"angles": []}}})
    saved = viewer.layers.save(str(tmp_path / "saved.tif"), selected=False, plugin="napari-sim-ml")
    assert saved == [str(tmp_path / "saved.tif")]
    back = read_raw(saved[0], require_frames=False)
    assert back.pixel_size_um == pytest.approx(0.05) and back.extra["params"] == {"angles": []}
    assert back.extra["layer_name"] == layer.name  # the layer's name travels with the file


@pytest.mark.slow
def test_sample_data():
    (raw, raw_kw, raw_type), (truth, truth_kw, _) = sample_2beam()
    assert raw_type == "image" and raw.shape == (9, 256, 256) and raw.dtype == np.uint16
    assert truth.shape == (512, 512)
    assert truth_kw["scale"] == pytest.approx((0.04, 0.04)) and truth_kw["translate"] == (0.0, 0.0)
    assert raw_kw["scale"] == pytest.approx((1.0, 0.08, 0.08))
    meta = raw_kw["metadata"][KEY]
    assert meta["layout"]["n_phases"] == 3 and meta["camera_offset"] == 100.0
    assert len(PatternParameters.from_dict(meta["params"]).angles) == 3
    (raw3, kw3, _), _ = sample_3beam()
    assert raw3.shape == (15, 256, 256)
    assert PatternParameters.from_dict(kw3["metadata"][KEY]["params"]).n_orders == 2
    from napari_sim_ml._sample_data import SEED, SIZE, _simulate

    fresh = _simulate.__wrapped__(3, SIZE, SEED)  # a new simulation, not the cached one
    np.testing.assert_array_equal(np.clip(np.rint(fresh.raw), 0, 65535).astype(np.uint16).reshape(raw.shape), raw)
