import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.io import FrameLayout, arrange_frames, guess_layout, read_raw, validate_plane, write_tiff


def labelled_frames(n_t, n_z, n_a, n_p, order):
    """Frames whose pixel value encodes (t, z, a, p), stored in ``order`` (fastest first)."""
    sizes = {"P": n_p, "A": n_a, "Z": n_z}
    frames = []
    for t in range(n_t):
        idx = np.indices([sizes[c] for c in order[::-1]]).reshape(3, -1).T
        for combo in idx:
            pos = dict(zip(order[::-1], combo, strict=False))
            frames.append(np.full((4, 4), 1000 * t + 100 * pos["Z"] + 10 * pos["A"] + pos["P"], np.int32))
    return np.stack(frames)


@pytest.mark.parametrize("order", ["PAZ", "PZA", "ZAP", "APZ", "ZPA", "AZP"])
def test_every_frame_order_lands_on_its_angle_phase_and_plane(order):
    frames = labelled_frames(2, 3, 3, 5, order)
    out = arrange_frames(frames, FrameLayout(3, 5, 3, order))
    assert out.shape == (2, 3, 3, 5, 4, 4)
    t, z, a, p = np.indices(out.shape[:4])
    np.testing.assert_array_equal(out[..., 0, 0], 1000 * t + 100 * z + 10 * a + p)


def test_aliases_match_fairsim_names():
    assert FrameLayout(order="angle-major").order == "PAZ"
    assert FrameLayout(order="phase-major").order == "APZ"
    frames = np.arange(9)[:, None, None] * np.ones((1, 2, 2))
    np.testing.assert_array_equal(arrange_frames(frames, FrameLayout(3, 3, 1, "phase-major"))[0, 0, :, :, 0, 0],
                                  [[0, 3, 6], [1, 4, 7], [2, 5, 8]])


def test_layout_guesses():
    assert (guess_layout(9).n_angles, guess_layout(9).n_phases) == (3, 3)
    assert guess_layout(15).n_phases == 5
    omx = guess_layout(135)
    assert (omx.n_angles, omx.n_phases, omx.n_z, omx.order) == (3, 5, 9, "PZA")
    with pytest.raises(SimInputError, match="do not match"):
        guess_layout(7)


def test_wrong_frame_count_names_the_numbers():
    with pytest.raises(SimInputError, match="10 frames cannot be split into 3 angles × 3 phases"):
        arrange_frames(np.zeros((10, 8, 8)), FrameLayout(3, 3))


@pytest.mark.parametrize("plane, message", [
    (np.zeros((3, 3, 16, 16)) + np.arange(16), "too small"),
    (np.full((3, 3, 64, 64), np.nan), "NaN"),
    (np.full((3, 3, 64, 64), 5.0), "constant"),
    (np.zeros((64, 64)), "expected angles"),
])
def test_bad_planes(plane, message):
    with pytest.raises(SimInputError, match=message):
        validate_plane(plane)


def test_real_stacks_read_with_shape_and_pixel_size(data_dir):
    omx = read_raw(data_dir / "omx-3d-sim-64px/raw.tif")
    assert omx.frames.shape == (135, 64, 64)
    dv = read_raw(data_dir / "omx-3d-sim-64px/raw.dv")
    assert dv.frames.shape == (135, 64, 64)
    assert dv.pixel_size_um == pytest.approx(0.08, rel=1e-4) and dv.wavelength_nm == 528
    np.testing.assert_array_equal(arrange_frames(dv.frames, guess_layout(135)).shape, (1, 9, 3, 5, 64, 64))
    mrc = read_raw(data_dir / "tirf-sim-microtubules-lowsnr/MT.mrc")
    assert mrc.frames.shape == (9, 256, 256)
    assert mrc.pixel_size_um == pytest.approx(0.0626, rel=1e-4) and mrc.wavelength_nm == 525
    frame = read_raw(data_dir / "3beam-microtubules-x2/high/HE_00.tif", require_frames=False)
    assert frame.frames.shape == (256, 256)
    recon = read_raw(data_dir / "3beam-microtubules-x2/high-reconstruction.tif", require_frames=False)
    assert recon.pixel_size_um == pytest.approx(0.030, rel=1e-3)


def test_omx_tiff_pixel_size_comes_from_its_resolution_tags(data_dir):
    omx = read_raw(data_dir / "omx-3d-sim-64px/raw.tif")
    assert omx.pixel_size_um == pytest.approx(0.08, rel=1e-3)


def test_write_read_round_trip_keeps_pixel_size_and_metadata(tmp_path):
    data = np.random.default_rng(0).random((9, 40, 48)).astype(np.float32)
    meta = {"optics": {"na": 1.2, "wavelength_nm": 610.0, "pixel_size_um": 0.065}, "params": {"angles": []}}
    path = write_tiff(tmp_path / "x.tif", data, 0.065, meta)
    back = read_raw(path)
    np.testing.assert_array_equal(back.frames, data)
    assert back.pixel_size_um == pytest.approx(0.065) and back.na == 1.2 and back.wavelength_nm == 610.0
    assert back.extra["params"] == {"angles": []}
    with tifffile.TiffFile(path) as tif:  # plain ImageJ readers see the scale too
        assert tif.imagej_metadata["unit"] == "um"


def test_existing_output_is_never_replaced_without_overwrite(tmp_path):
    path = tmp_path / "x.tif"
    path.write_bytes(b"keep me")
    with pytest.raises(SimInputError, match="--overwrite"):
        write_tiff(path, np.zeros((8, 8), np.float32), 0.1)
    assert path.read_bytes() == b"keep me"
    write_tiff(path, np.zeros((8, 8), np.float32), 0.1, overwrite=True)
    assert read_raw(path, require_frames=False).frames.shape == (8, 8)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        with open(args[0], "wb") as fh:
            fh.write(b"half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(SimInputError, match="No space left"):
        write_tiff(tmp_path / "x.tif", np.zeros((8, 8), np.float32), 0.1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [(None, "not found"), (b"garbage" * 10, "cannot read")])
def test_missing_and_unreadable_files(tmp_path, content, message):
    path = tmp_path / "raw.tif"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SimInputError, match=message):
        read_raw(path)


@pytest.mark.parametrize("name", ["raw.tif", "raw.mrc", "raw.dv"])
def test_a_broken_file_is_one_sentence_naming_it_from_every_reader(tmp_path, name):
    from napari_sim_ml.engine.lazy import open_lazy
    from napari_sim_ml.engine.sequence import read_sequence

    path = tmp_path / name
    path.write_bytes(b"garbage" * 40)
    for read in (read_raw, open_lazy):
        with pytest.raises(SimInputError, match=rf"^cannot read {name}: \w+") as err:
            read(path)
        assert "\n" not in str(err.value)
    good = tmp_path / "good"
    good.mkdir()
    frames = np.ones((9, 16, 16), np.uint16)
    if path.suffix == ".tif":
        tifffile.imwrite(good / "img_0.tif", frames)
    else:
        import mrcfile

        with mrcfile.new(good / f"img_0{path.suffix}") as mrc:
            mrc.set_data(frames)
    (good / f"img_1{path.suffix}").write_bytes(b"garbage" * 40)  # a broken file among a sequence's files
    with pytest.raises(SimInputError, match=rf"cannot read img_1{path.suffix}"):
        read_sequence(good)


def test_single_image_is_not_a_sim_stack(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", np.ones((64, 64), np.uint16))
    with pytest.raises(SimInputError, match="single 2-D image"):
        read_raw(tmp_path / "one.tif")
