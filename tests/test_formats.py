"""Files microscopists have, through batch and the napari reader: folders of frames, the z step,
OME-Zarr in and out, lazy opening."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml._reader import napari_get_reader
from napari_sim_ml.batch import build_parser, expand_inputs, run_batch
from napari_sim_ml.engine.io import write_tiff

from .conftest import cli_subprocess as _cli
from .test_batch import read_output, timelapse, write_raw

KEY = "napari_sim_ml"


def batch(*argv) -> int:
    return run_batch(build_parser().parse_args([str(a) for a in argv] + ["--no-progress"]))


def _layers(path):
    reader = napari_get_reader(str(path))
    assert reader is not None, path
    return reader(str(path))


@pytest.fixture(scope="module")
def two_points(tmp_path_factory):
    """2 time points × 9 frames × 64², as one stacked file and as a folder of 18 single-frame files."""
    root = tmp_path_factory.mktemp("fmt")
    frames, optics = timelapse(2, size=64)
    stacked = write_raw(root / "stack.tif", frames, optics)
    folder = root / "acq1"
    folder.mkdir()
    for i, frame in enumerate(frames):
        write_tiff(folder / f"img_{i}.tif", frame, optics.pixel_size_um,
                   {"optics": {"na": optics.na, "wavelength_nm": optics.wavelength_nm}, "camera_offset": 100.0})
    return frames, optics, stacked, folder


# ---------------------------------------------------------------- sequences
@pytest.mark.slow
def test_batch_takes_a_folder_of_frames_as_one_input(two_points, tmp_path):
    frames, optics, stacked, folder = two_points
    assert expand_inputs([str(folder)]) == [folder]  # one input, not 18
    assert expand_inputs([str(stacked.parent)]).count(stacked) == 1  # a folder of stacks: each file
    assert batch(folder, "-o", tmp_path, "--z", 1) == 0  # 18 frames alone would guess 2 planes, as for one file
    assert batch(stacked, "-o", tmp_path) == 0
    np.testing.assert_array_equal(read_output(tmp_path / "acq1_sim.ome.tif"),
                                  read_output(tmp_path / "stack_sim.ome.tif"))
    pattern = str(folder / "img_*.tif")
    # a quoted glob pattern: one input named by its prefix
    assert batch(pattern, "-o", tmp_path / "glob", "--z", 1) == 0
    np.testing.assert_array_equal(read_output(tmp_path / "glob" / "img_sim.ome.tif"),
                                  read_output(tmp_path / "stack_sim.ome.tif"))


def test_reader_opens_a_folder_of_frames_lazily(two_points):
    frames, optics, _, folder = two_points
    (data, kwargs, kind), = _layers(folder)
    assert kind == "image" and not isinstance(data, np.ndarray) and data.shape == (18, 64, 64)
    np.testing.assert_array_equal(np.asarray(data), frames)
    assert kwargs["scale"][-1] == pytest.approx(optics.pixel_size_um) and kwargs["name"] == "acq1"
    assert kwargs["metadata"][KEY]["layout"]["n_angles"] == 3


def test_reader_keeps_the_real_average_frame_as_its_own_layer(data_dir):
    layers = _layers(data_dir / "3beam-microtubules-x2" / "high")
    assert len(layers) == 2
    (raw, raw_kw, _), (avg, avg_kw, _) = layers
    assert raw.shape == (15, 256, 256) and avg.shape == (256, 256)
    assert raw_kw["metadata"][KEY]["layout"]["n_phases"] == 5  # 15 frames: 3 angles × 5 phases
    assert avg_kw["name"] == "high average frame" and "HE_15.tif" in avg_kw["metadata"][KEY]["note"]
    np.testing.assert_allclose(avg.astype(float), np.asarray(raw).mean(axis=0), atol=1.0)


# ---------------------------------------------------------------- z step and OME-Zarr
@pytest.fixture(scope="module")
def zstack(tmp_path_factory):
    """A 3-plane raw stack (3 × 3 frames per plane, PAZ … as z slowest) with a 0.125 µm z step."""
    root = tmp_path_factory.mktemp("zstack")
    frames, optics = timelapse(3, size=64)  # three independent 3 × 3 sets: one per plane
    from dataclasses import asdict

    from napari_sim_ml.engine.io import FrameLayout

    meta = {"kind": "raw", "optics": asdict(optics), "layout": asdict(FrameLayout(3, 3, 3, "PAZ")),
            "camera_offset": 100.0}
    path = write_tiff(root / "z3.tif", frames, optics.pixel_size_um, meta, z_step_um=0.125)
    return path, optics


def test_the_z_step_is_read_from_imagej_ome_and_mrc(zstack, tmp_path):
    import mrcfile
    import tifffile

    from napari_sim_ml.engine.io import read_raw
    from napari_sim_ml.engine.lazy import open_lazy

    path, _ = zstack
    assert read_raw(path).z_step_um == pytest.approx(0.125)  # ImageJ spacing
    assert open_lazy(path)[0].z_step_um == pytest.approx(0.125)
    frames = read_raw(path).frames
    tifffile.imwrite(tmp_path / "x.ome.tif", frames.reshape(3, 9, 64, 64), ome=True,
                     metadata={"axes": "ZTYX", "PhysicalSizeX": 0.08,
                               "PhysicalSizeZ": 250, "PhysicalSizeZUnit": "nm"})
    assert read_raw(tmp_path / "x.ome.tif").z_step_um == pytest.approx(0.25)  # OME, with its unit
    with mrcfile.new(tmp_path / "x.mrc") as mrc:
        mrc.set_data(frames)
        mrc.voxel_size = (800.0, 800.0, 1250.0)  # Å in MRC2014
    assert read_raw(tmp_path / "x.mrc").z_step_um == pytest.approx(0.125)


def test_the_z_step_is_read_from_a_dv_header(data_dir):
    from napari_sim_ml.engine.io import read_raw

    assert read_raw(data_dir / "omx-3d-sim-64px" / "raw.dv").z_step_um == pytest.approx(0.125)  # DV header dz


@pytest.mark.slow
def test_a_3_plane_stack_keeps_its_z_step_in_tiff_ome_tiff_and_ome_zarr(zstack, tmp_path):
    import tifffile

    from napari_sim_ml.engine.io import read_raw
    from napari_sim_ml.engine.omezarr import validate_omezarr

    path, optics = zstack
    res = _cli("reconstruct", path, "-o", tmp_path / "sr.tif")
    assert res.returncode == 0, res.stderr
    with tifffile.TiffFile(tmp_path / "sr.tif") as tif:
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.125)
    assert read_raw(tmp_path / "sr.tif", require_frames=False).z_step_um == pytest.approx(0.125)
    assert batch(path, "-o", tmp_path, "--format", "ome-zarr") == 0
    assert batch(path, "-o", tmp_path) == 0
    with tifffile.TiffFile(tmp_path / "z3_sim.ome.tif") as tif:
        assert 'PhysicalSizeZ="0.125"' in tif.ome_metadata
    store = tmp_path / "z3_sim.ome.zarr"
    assert validate_omezarr(store) == "0.5"
    import zarr

    ome = dict(zarr.open_group(str(store), mode="r").attrs)["ome"]
    ms = ome["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert all(a.get("unit") == "micrometer" for a in ms["axes"])
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == pytest.approx([0.125, optics.pixel_size_um / 2, optics.pixel_size_um / 2])
    array = zarr.open_array(str(store / ms["datasets"][0]["path"]), mode="r")
    assert array.chunks == (1, 128, 128)  # one chunk per plane
    np.testing.assert_array_equal(array[:], read_output(tmp_path / "z3_sim.ome.tif")[0])
    # the plugin reader: the z step is the layer's z scale, for the TIFF and the OME-Zarr alike
    for out in (tmp_path / "sr.tif", store, tmp_path / "z3_sim.ome.tif"):
        (data, kwargs, _), = _layers(out)
        assert data.shape == (3, 128, 128), out
        assert kwargs["scale"] == pytest.approx((0.125, optics.pixel_size_um / 2, optics.pixel_size_um / 2)), out
        assert tuple(kwargs["units"]) == ("um", "um", "um")
        assert kwargs["metadata"][KEY]["z_step_um"] == pytest.approx(0.125)


@pytest.mark.slow
def test_batch_ome_zarr_is_valid_ngff_and_round_trips(two_points, tmp_path):
    import zarr

    from napari_sim_ml.engine.errors import SimInputError
    from napari_sim_ml.engine.omezarr import validate_omezarr

    frames, optics, stacked, _ = two_points
    for version in ("0.4", "0.5"):
        out = tmp_path / version
        assert batch(stacked, "-o", out, "--format", "ome-zarr", "--ngff-version", version) == 0
        store = out / "stack_sim.ome.zarr"
        assert validate_omezarr(store) == version
        (data, kwargs, _), = _layers(store)
        assert not isinstance(data, np.ndarray)  # lazy
        assert data.shape == (2, 128, 128) and kwargs["scale"][-2:] == pytest.approx((0.04, 0.04))
        meta = kwargs["metadata"][KEY]
        assert meta["kind"] == "reconstruction" and len(meta["params"]["angles"]) == 3
    np.testing.assert_array_equal(np.asarray(data), read_output(_ome_tiff(stacked, tmp_path))[:, 0])
    # the validator can fail: a store whose axes lost their names is refused
    attrs = dict(zarr.open_group(str(store), mode="r").attrs)
    for axis in attrs["ome"]["multiscales"][0]["axes"]:
        axis.pop("name")
    broken = tmp_path / "broken.zarr"
    zarr.open_group(str(broken), mode="w").attrs.update(attrs)
    with pytest.raises(SimInputError, match="not valid OME-NGFF"):
        validate_omezarr(broken)


def _ome_tiff(stacked, tmp_path):
    assert batch(stacked, "-o", tmp_path / "tif") == 0
    return tmp_path / "tif" / "stack_sim.ome.tif"


# ---------------------------------------------------------------- N-SIM mosaics
def _nsim_mosaic(frames: np.ndarray, n_a: int = 3, n_p: int = 3) -> np.ndarray:
    """(n_a·n_p, h, w) frames in PAZ order → one N-SIM image: phases along x, angles along y."""
    h, w = frames.shape[-2:]
    out = np.empty((n_a * h, n_p * w), frames.dtype)
    for a in range(n_a):
        for p in range(n_p):
            out[a * h:(a + 1) * h, p * w:(p + 1) * w] = frames[a * n_p + p]
    return out


@pytest.mark.slow
def test_an_nsim_mosaic_gives_the_same_result_as_the_nine_frame_stack(two_points, tmp_path):
    import json

    from napari_sim_ml.engine.errors import SimInputError
    from napari_sim_ml.engine.mosaic import parse_mosaic, split_mosaic

    frames, optics, _, _ = two_points
    nine = frames[:9]
    mosaic = _nsim_mosaic(nine)
    np.testing.assert_array_equal(split_mosaic(mosaic, 3, 3), nine)
    meta = {"optics": {"na": optics.na, "wavelength_nm": optics.wavelength_nm}, "camera_offset": 100.0}
    stack_path = write_tiff(tmp_path / "nine.tif", nine, optics.pixel_size_um, meta)
    mosaic_path = write_tiff(tmp_path / "nsim.tif", mosaic, optics.pixel_size_um, meta)
    a = _cli("estimate", stack_path, "--json", tmp_path / "a.json")
    b = _cli("estimate", mosaic_path, "--mosaic", "3x3", "--json", tmp_path / "b.json")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    for path, extra in ((stack_path, []), (mosaic_path, ["--mosaic", "3x3"])):
        res = _cli("reconstruct", path, "-o", tmp_path / f"{path.stem}_sr.tif", *extra)
        assert res.returncode == 0, res.stderr
    from napari_sim_ml.engine.io import read_raw

    np.testing.assert_array_equal(read_raw(tmp_path / "nsim_sr.tif", require_frames=False).frames,
                                  read_raw(tmp_path / "nine_sr.tif", require_frames=False).frames)
    # batch: a time-lapse of two mosaics, lazily
    two = np.stack([_nsim_mosaic(frames[:9]), _nsim_mosaic(frames[9:])])
    write_tiff(tmp_path / "nsim2.tif", two, optics.pixel_size_um, meta)
    assert batch(tmp_path / "nsim2.tif", "-o", tmp_path / "out", "--mosaic", "3x3") == 0
    assert batch(_two_stack(frames, optics, tmp_path), "-o", tmp_path / "out") == 0
    np.testing.assert_array_equal(read_output(tmp_path / "out" / "nsim2_sim.ome.tif"),
                                  read_output(tmp_path / "out" / "stack18_sim.ome.tif"))
    res = _cli("estimate", mosaic_path, "--mosaic", "5x3")  # 192 rows do not divide by 5
    assert res.returncode == 2 and "cannot be split into a 5 × 3 mosaic" in res.stderr
    with pytest.raises(SimInputError, match="rows x columns"):
        parse_mosaic("3by3")


def _two_stack(frames, optics, tmp_path):
    meta = {"optics": {"na": optics.na, "wavelength_nm": optics.wavelength_nm}, "camera_offset": 100.0,
            "layout": {"n_angles": 3, "n_phases": 3, "n_z": 1, "order": "PAZ"}}
    return write_tiff(tmp_path / "stack18.tif", frames, optics.pixel_size_um, meta)
