"""Batch reconstruction through dask: lazy reading, equality with the plane-by-plane engine,
a dask.distributed cluster, resuming after a kill, and bad inputs inside a batch."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sim_ml.batch import build_parser, output_name, run_batch
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.io import FrameLayout, arrange_frames, read_raw, write_tiff
from napari_sim_ml.engine.lazy import arrange_lazy, close_files, open_lazy
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import AnglePattern, Optics, PatternParameters, wrap_phase
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

OFFSET = 100.0


def timelapse(n_t: int, size: int = 128, seed: int = 0, drift: float = 0.0) -> tuple[np.ndarray, object]:
    """(n_t·9, size, size) uint16 frames: a new object and noise at every time point, one pattern
    (its phases shifted by ``drift`` radians per time point)."""
    first = simulate_acquisition("filaments", size, seed=seed)
    frames, params = [], first.params
    for t in range(n_t):
        p = PatternParameters(tuple(AnglePattern(a.k_cycles_per_um, tuple(wrap_phase(f + drift * t)
                                                                          for f in a.phases_rad), a.modulation)
                                    for a in params.angles))
        sim = simulate_acquisition("filaments", size, params=p, seed=seed + 1000 + t, offset=OFFSET)
        frames.append(np.clip(np.rint(sim.raw), 0, 65535).astype(np.uint16).reshape(-1, size, size))
    return np.concatenate(frames), first.optics


def write_raw(path: Path, frames: np.ndarray, optics) -> Path:
    meta = {"kind": "raw", "optics": asdict(optics), "layout": asdict(FrameLayout()), "camera_offset": OFFSET}
    write_tiff(path, frames, optics.pixel_size_um, meta)
    return path


def engine_reference(path: Path, estimate_t: int = 0, per_time_point: bool = False) -> np.ndarray:
    """What the engine gives plane by plane (read everything, estimate, prepare + filter)."""
    raw = read_raw(path)
    planes = arrange_frames(raw.frames, FrameLayout())
    optics = Optics(raw.na, raw.wavelength_nm, raw.pixel_size_um)
    otf = ideal_otf(optics)
    fixed = estimate_pattern(planes[estimate_t, 0], optics, otf=otf, background=OFFSET).params
    out = np.empty((planes.shape[0], planes.shape[1], 2 * planes.shape[-2], 2 * planes.shape[-1]), np.float32)
    for t in range(planes.shape[0]):
        params = (estimate_pattern(planes[t, 0], optics, otf=otf, background=OFFSET).params
                  if per_time_point else fixed)
        for z in range(planes.shape[1]):
            # w from the noise
            out[t, z] = wiener_filter(prepare_reconstruction(planes[t, z], optics, params, otf, OFFSET))
    return out


def read_output(path: Path) -> np.ndarray:
    """An OME-TIFF output as (T, Z, Y, X), length-1 axes kept."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        sizes = dict(zip(series.get_axes(False), series.get_shape(False), strict=False))
        return series.asarray().reshape([sizes[a] for a in "TZYX"])


def batch(*argv) -> int:
    return run_batch(build_parser().parse_args([str(a) for a in argv] + ["--no-progress"]))


def run_cli(*argv, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "napari_sim_ml.batch", *map(str, argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """The issue's time-lapse: 20 time points × 9 frames × 128², drift-free pattern."""
    folder = tmp_path_factory.mktemp("series")
    frames, optics = timelapse(20)
    path = write_raw(folder / "cell.tif", frames, optics)
    return path, engine_reference(path)


# ---------------------------------------------------------------- lazy reading
def test_lazy_reader_matches_full_read_for_tiff_ome_and_mrc(tmp_path):
    import mrcfile

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 4000, (2 * 9, 48, 40), dtype=np.uint16)
    write_tiff(tmp_path / "ij.tif", frames, 0.08, {"optics": {"na": 1.2}})
    with mrcfile.new(tmp_path / "x.mrc") as mrc:
        mrc.set_data(frames)
        mrc.voxel_size = 0.1
    ome = rng.integers(0, 4000, (2, 2, 9, 48, 40), dtype=np.uint16)  # T C Z Y X
    tifffile.imwrite(tmp_path / "x.ome.tif", ome, ome=True,
                     metadata={"axes": "TCZYX", "PhysicalSizeX": 0.09, "PhysicalSizeXUnit": "µm"})
    for name in ("ij.tif", "x.mrc"):
        raw, _ = open_lazy(tmp_path / name)
        assert type(raw.frames).__name__ == "Array" and raw.frames.npartitions == 18  # nothing read yet
        full = read_raw(tmp_path / name)
        np.testing.assert_array_equal(raw.frames.compute(), full.frames)
        assert raw.pixel_size_um == pytest.approx(full.pixel_size_um) and raw.na == full.na
        # the frame order is applied lazily, one plane per chunk, as arrange_frames does
        for order in ("PAZ", "PZA", "ZAP", "APZ"):
            layout = FrameLayout(3, 3, 2, order)
            lazy = arrange_lazy(raw.frames, layout)
            assert lazy.chunksize[:2] == (1, 1)
            np.testing.assert_array_equal(lazy.compute(), arrange_frames(full.frames, layout))
        close_files()
    raw, _ = open_lazy(tmp_path / "x.ome.tif", channel=1)
    np.testing.assert_array_equal(raw.frames.compute(), ome[:, 1].reshape(-1, 48, 40))
    assert raw.pixel_size_um == pytest.approx(0.09)
    with pytest.raises(ValueError, match="2 channels; choose one with --channel"):
        open_lazy(tmp_path / "x.ome.tif")
    close_files()


# ---------------------------------------------------------------- equality with the engine
@pytest.mark.slow
def test_batch_equals_plane_by_plane_engine(series, tmp_path):
    path, reference = series
    assert batch(path, "-o", tmp_path, "--workers", 2) == 0
    out = tmp_path / "cell_sim.ome.tif"
    result = read_output(out)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome and tif.series[0].get_axes(False) == "TZCYXS"
        meta = json.loads(tif.ome_metadata.split("<Description>")[1].split("</Description>")[0]
                          .replace("&quot;", '"').replace("&amp;", "&"))["napari_sim_ml"]
    assert result.shape == (20, 1, 256, 256) and result.dtype == np.float32
    np.testing.assert_array_equal(result, reference)  # exactly the engine's planes
    assert meta["estimated_on"] == "time point 0" and len(meta["params"]["angles"]) == 3
    assert read_raw(out, require_frames=False).pixel_size_um == pytest.approx(0.04)
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.slow
def test_distributed_local_cluster_gives_the_same_output(series, tmp_path):
    distributed = pytest.importorskip("distributed")
    path, reference = series
    short = write_raw(tmp_path / "short.tif", read_raw(path).frames[:6 * 9], _optics(path))
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=40) as cluster:
        assert batch(short, "-o", tmp_path / "cluster", "--scheduler", cluster.scheduler_address,
                     "--format", "zarr") == 0
    result = read_raw(tmp_path / "cluster" / "short_sim.zarr", require_frames=False).frames  # OME-Zarr (t, y, x)
    assert batch(short, "-o", tmp_path / "threads") == 0
    threads = read_output(tmp_path / "threads" / "short_sim.ome.tif")
    result = result.reshape(threads.shape)
    np.testing.assert_array_equal(result, threads)
    np.testing.assert_array_equal(result, reference[:6])


def _optics(path: Path) -> Optics:
    raw = read_raw(path)
    return Optics(raw.na, raw.wavelength_nm, raw.pixel_size_um)


@pytest.mark.slow
def test_per_time_point_estimation_follows_a_drifting_pattern(tmp_path):
    frames, optics = timelapse(3, seed=5, drift=0.8)
    path = write_raw(tmp_path / "drift.tif", frames, optics)
    assert batch(path, "-o", tmp_path / "each", "--per-time-point", "--scheduler", "processes",
                 "--workers", 2) == 0
    result = read_output(tmp_path / "each" / "drift_sim.ome.tif")
    np.testing.assert_array_equal(result, engine_reference(path, per_time_point=True))
    # the fixed pattern of time point 0 is wrong for the later ones
    fixed = engine_reference(path)
    assert np.abs(fixed[2] - result[2]).max() > 0.05 * np.abs(result[2]).max()
    np.testing.assert_array_equal(fixed[0], result[0])


# ---------------------------------------------------------------- resuming and bad input
@pytest.mark.slow
def test_killed_batch_resumes_without_redoing_finished_files(series, tmp_path):
    path, _ = series
    frames = read_raw(path).frames
    optics = _optics(path)
    inputs = [write_raw(tmp_path / f"in{i}.tif", frames, optics) for i in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    (out / ".in2_sim.ome.tif.part").write_bytes(b"left over from an earlier crash")
    proc = run_cli(*inputs, "-o", out, "--workers", 1, "--no-progress")
    first = out / "in0_sim.ome.tif"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert first.exists(), "the first output was not finished before the kill"
    assert not (out / "in2_sim.ome.tif").exists(), "the batch finished before it could be killed"
    stamp = first.stat().st_mtime_ns, first.stat().st_ino

    res = run_cli(*inputs, "-o", out, "--no-progress")
    stdout, stderr = res.communicate(timeout=300)
    assert res.returncode == 0, stderr
    assert "in0.tif: skipped" in stdout and "2 reconstructed, 1 skipped" in stdout
    assert (first.stat().st_mtime_ns, first.stat().st_ino) == stamp  # not redone
    assert sorted(p.name for p in out.iterdir()) == [f"in{i}_sim.ome.tif" for i in range(3)]  # no partials
    a, b = (read_output(out / f"in{i}_sim.ome.tif") for i in (0, 2))
    assert a.shape == (20, 1, 256, 256)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_bad_inputs_are_reported_by_name_and_skipped(series, tmp_path):
    path, reference = series
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00" + os.urandom(2000))
    frames = read_raw(path).frames
    write_raw(tmp_path / "ten_frames.tif", frames[:10], _optics(path))
    good = write_raw(tmp_path / "good.tif", frames[:2 * 9], _optics(path))
    res = run_cli(tmp_path / "corrupt.tif", tmp_path / "ten_frames.tif", good, "-o", tmp_path / "out",
                  "--no-progress")
    stdout, stderr = res.communicate(timeout=300)
    assert res.returncode == 1
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert any("corrupt.tif" in line and "cannot read" in line for line in errors), stderr
    assert any("ten_frames.tif" in line and "10 frames" in line for line in errors), stderr
    assert "1 reconstructed, 0 skipped (done before), 2 failed: corrupt.tif, ten_frames.tif" in stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_sim.ome.tif"]
    np.testing.assert_array_equal(read_output(tmp_path / "out" / "good_sim.ome.tif"), reference[:2])


@pytest.mark.slow
def test_usage_errors_exit_2_and_a_missing_input_is_one_failure(series, tmp_path, capsys):
    path, _ = series
    assert batch(path, "-o", tmp_path, "--estimate-on", "first") == 2
    assert batch(tmp_path / "missing.tif", "-o", tmp_path) == 1
    assert "missing.tif: file not found" in capsys.readouterr().err
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_raw(tmp_path / "a" / "x.tif", read_raw(path).frames[:9], _optics(path))
    write_raw(tmp_path / "b" / "x.tif", read_raw(path).frames[:9], _optics(path))
    assert batch(tmp_path / "a", tmp_path / "b", "-o", tmp_path / "o") == 2
    assert "would both be written" in capsys.readouterr().err


@pytest.mark.slow
def test_estimate_on_mean_and_output_names(series, tmp_path):
    path, reference = series
    short = write_raw(tmp_path / "s.ome.tif", read_raw(path).frames[:4 * 9], _optics(path))
    assert output_name(short, "ome-tiff") == "s_sim.ome.tif" and output_name(short, "zarr") == "s_sim.zarr"
    assert batch(short, "-o", tmp_path / "o", "--estimate-on", "mean") == 0
    result = read_output(tmp_path / "o" / "s_sim.ome.tif")
    with tifffile.TiffFile(tmp_path / "o" / "s_sim.ome.tif") as tif:
        meta = json.loads(tif.ome_metadata.split("<Description>")[1].split("</Description>")[0]
                          .replace("&quot;", '"').replace("&amp;", "&"))["napari_sim_ml"]
    assert meta["estimated_on"] == "mean of all time points"
    # the averaged time points give the pattern of time point 0 (it does not drift): nearly the same images
    single = estimate_pattern(arrange_frames(read_raw(short).frames, FrameLayout())[0, 0], _optics(path),
                              background=OFFSET).params
    for a, b in zip(meta["params"]["angles"], single.angles, strict=False):
        assert a["period_um"] == pytest.approx(b.period_um, rel=2e-3)
        assert abs((a["angle_deg"] - b.angle_deg + 90) % 180 - 90) < 0.1
    def rms(x):
        return float(np.sqrt(np.mean(np.square(x))))
    assert rms(result - reference[:4]) < 0.1 * rms(reference[:4])  # phases/modulation differ slightly
