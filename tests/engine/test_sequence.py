"""Sequences: folders and glob patterns of frames read as one stack, natural order, trailing average frames."""

import json

import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.io import FrameLayout, arrange_frames, read_raw, write_tiff
from napari_sim_ml.engine.lazy import arrange_lazy, open_lazy
from napari_sim_ml.engine.sequence import natural_key, parse_frames, select_frames, sequence_files
from napari_sim_ml.engine.simulate import simulate_acquisition

from ..conftest import cli_subprocess as _cli


@pytest.fixture(scope="module")
def sim_stack(tmp_path_factory):
    """A simulated 3 × 3 acquisition as one stacked file and as a folder of 9 single-frame files."""
    sim = simulate_acquisition("filaments", 128, seed=5)
    counts = np.clip(np.rint(sim.raw), 0, 65535).astype(np.uint16).reshape(-1, 128, 128)
    root = tmp_path_factory.mktemp("seq")
    stacked = write_tiff(root / "stacked.tif", counts, sim.optics.pixel_size_um, {"camera_offset": sim.offset})
    folder = root / "frames"
    folder.mkdir()
    for i, frame in enumerate(counts):  # frame_1 … frame_9: a plain sort would put frame_10 wrong
        write_tiff(folder / f"frame_{i + 1}.tif", frame, sim.optics.pixel_size_um)
    return sim, counts, stacked, folder


def test_natural_sort_puts_frame_2_before_frame_10(tmp_path):
    names = ["frame_10.tif", "frame_2.tif", "frame_1.tif", "Frame_11.tif"]
    assert sorted(names, key=natural_key) == ["frame_1.tif", "frame_2.tif", "frame_10.tif", "Frame_11.tif"]
    for i in (10, 2, 1, 11):
        tifffile.imwrite(tmp_path / f"f{i}.tif", np.full((32, 32), i, np.uint16))
    (tmp_path / ".hidden.tif").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [f.name for f in sequence_files(tmp_path)] == ["f1.tif", "f2.tif", "f10.tif", "f11.tif"]
    raw = read_raw(tmp_path)
    assert raw.frames[:, 0, 0].tolist() == [1, 2, 10, 11]


@pytest.mark.slow
def test_a_folder_of_nine_frames_gives_the_same_estimate_as_the_stacked_file(sim_stack):
    sim, counts, stacked, folder = sim_stack
    one, seq = read_raw(stacked), read_raw(folder)
    np.testing.assert_array_equal(seq.frames, one.frames)
    assert seq.pixel_size_um == pytest.approx(one.pixel_size_um)
    layout = FrameLayout(3, 3)
    plane = lambda raw: arrange_frames(raw.frames, layout)[0, 0]  # noqa: E731
    a = estimate_pattern(plane(one), sim.optics, background=sim.offset).params
    b = estimate_pattern(plane(seq), sim.optics, background=sim.offset).params
    assert a == b
    truth = sim.params.angles[0].k_cycles_per_um
    assert np.hypot(*np.subtract(b.angles[0].k_cycles_per_um, truth)) < 0.02 or \
        np.hypot(*np.add(b.angles[0].k_cycles_per_um, truth)) < 0.02
    lazy, _ = open_lazy(folder)  # the lazy path reads the same frames
    np.testing.assert_array_equal(np.asarray(arrange_lazy(lazy.frames, layout)), arrange_frames(counts, layout))


@pytest.mark.slow
def test_a_glob_of_multi_frame_files_is_one_stack(sim_stack, tmp_path):
    _, counts, _, _ = sim_stack
    for a in range(3):  # one file per angle, 3 phases each
        tifffile.imwrite(tmp_path / f"angle{a}_x.tif", counts[3 * a:3 * a + 3])
    tifffile.imwrite(tmp_path / "other.tif", counts[:3])
    raw = read_raw(str(tmp_path / "angle*_x.tif"))
    np.testing.assert_array_equal(raw.frames, counts)
    assert raw.extra["sequence"]["frames_per_file"] == [3, 3, 3]
    lazy, _ = open_lazy(str(tmp_path / "angle*_x.tif"))
    np.testing.assert_array_equal(np.asarray(lazy.frames[4:7]), counts[4:7])


def test_bad_sequences_are_refused_with_a_sentence(tmp_path):
    with pytest.raises(SimInputError, match="no TIFF or MRC files"):
        read_raw(tmp_path)
    with pytest.raises(SimInputError, match="no TIFF or MRC files"):
        read_raw(str(tmp_path / "nothing_*.tif"))
    tifffile.imwrite(tmp_path / "a1.tif", np.zeros((64, 64), np.uint16))
    tifffile.imwrite(tmp_path / "a2.tif", np.zeros((64, 32), np.uint16))
    with pytest.raises(SimInputError, match="one frame size"):
        read_raw(tmp_path)
    tifffile.imwrite(tmp_path / "a2.tif", np.zeros((64, 64), np.float32))
    with pytest.raises(SimInputError, match="one pixel type"):
        open_lazy(tmp_path)


def test_frame_selection():
    assert parse_frames("0-2,5", 9) == [0, 1, 2, 5]
    assert parse_frames("-1", 9) == [8]
    for bad in ("0-9", "a", "3-1"):
        with pytest.raises(SimInputError):
            parse_frames(bad, 9)


def test_the_real_3beam_folder_opens_and_its_average_frame_is_named(data_dir):
    folder = data_dir / "3beam-microtubules-x2" / "high"
    raw = read_raw(folder)
    assert raw.frames.shape == (16, 256, 256)
    assert raw.extra["sequence"]["files"][0] == "HE_00.tif" and raw.extra["sequence"]["average_frame"] == 15
    np.testing.assert_allclose(raw.frames[15].astype(float), raw.frames[:15].mean(axis=0), atol=1.0)
    chosen = select_frames(raw, "0-14")
    assert chosen.frames.shape[0] == 15
    np.testing.assert_array_equal(chosen.frames, raw.frames[:15])
    lazy, _ = open_lazy(folder)
    assert lazy.frames.shape == (16, 256, 256) and lazy.extra["sequence"]["average_frame"] == 15


@pytest.mark.slow
def test_cli_refuses_the_average_frame_clearly_and_takes_frames(data_dir, tmp_path):
    folder = data_dir / "3beam-microtubules-x2" / "high"
    optics = ["--na", "1.49", "--wavelength-nm", "525", "--pixel-size-um", "0.03"]
    res = _cli("estimate", folder, *optics)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "HE_15.tif) is the average" in res.stderr and "--frames 0-14" in res.stderr
    res = _cli("estimate", folder, *optics, "--frames", "0-14", "--json", tmp_path / "p.json")
    assert res.returncode == 0, res.stderr
    params = json.loads((tmp_path / "p.json").read_text())
    assert len(params["angles"]) == 3 and len(params["angles"][0]["phases_rad"]) == 5
    periods = sorted(a["period_um"] for a in params["angles"])  # NOTES: |k1| = 15.5 cycles per 256 px field
    assert periods[0] == pytest.approx(256 * 0.03 / 15.5, rel=0.03)


@pytest.mark.slow
def test_cli_estimate_on_a_folder_equals_the_stacked_file(sim_stack):
    _, _, stacked, folder = sim_stack
    optics = ["--na", "1.4", "--wavelength-nm", "525"]
    a, b = _cli("estimate", stacked, *optics), _cli("estimate", folder, *optics, "--background", 100)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert json.loads(a.stdout)["angles"] == json.loads(b.stdout)["angles"]
