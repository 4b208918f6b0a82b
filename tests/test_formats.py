"""Files microscopists have, through batch and the napari reader: folders of frames, the z step,
OME-Zarr in and out, lazy opening."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_sim_ml._reader import napari_get_reader
from napari_sim_ml.batch import build_parser, expand_inputs, run_batch
from napari_sim_ml.engine.io import write_tiff

from .test_batch import read_output, timelapse, write_raw

KEY = "napari_sim_ml"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    return DATA


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
def test_batch_takes_a_folder_of_frames_as_one_input(two_points, tmp_path):
    frames, optics, stacked, folder = two_points
    assert expand_inputs([str(folder)]) == [folder]  # one input, not 18
    assert expand_inputs([str(stacked.parent)]).count(stacked) == 1  # a folder of stacks: each file
    assert batch(folder, "-o", tmp_path, "--z", 1) == 0  # 18 frames alone would guess 2 planes, as for one file
    assert batch(stacked, "-o", tmp_path) == 0
    np.testing.assert_array_equal(read_output(tmp_path / "acq1_sim.ome.tif"), read_output(tmp_path / "stack_sim.ome.tif"))
    pattern = str(folder / "img_*.tif")
    assert batch(pattern, "-o", tmp_path / "glob", "--z", 1) == 0  # a quoted glob pattern: one input named by its prefix
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
