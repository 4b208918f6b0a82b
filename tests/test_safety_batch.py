"""Issue 11, batch: concurrent runs into one folder, kill / Ctrl-C with process workers,
settings recorded in the outputs, -o pointing at the input folder (tiny 64² stacks)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.io import read_raw
from napari_sim_ml.engine.outputs import read_output_metadata

from .conftest import cli_simulated

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def cli(*argv, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "napari_sim_ml.cli", *map(str, argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Four 64² raw stacks of 6 time points each (54 frames), with their optics stored."""
    folder = tmp_path_factory.mktemp("raw")
    cli_simulated(folder / "one.tif", "--size", "64")
    raw = read_raw(folder / "one.tif")
    info = tifffile.TiffFile(folder / "one.tif").imagej_metadata["Info"]
    paths = []
    for i in range(4):
        rng = np.random.default_rng(i)
        frames = np.concatenate([rng.poisson(raw.frames.astype(np.float64)).astype(np.uint16) for _ in range(6)])
        path = folder / f"cell{i}.tif"
        tifffile.imwrite(path, frames, imagej=True, resolution=(12.5, 12.5),
                         metadata={"unit": "um", "axes": "ZYX", "Info": info.replace('"n_z": 1', '"n_z": 1')})
        paths.append(path)
    for extra in ("one.tif", "one_truth.tif", "one_params.json"):
        (folder / extra).unlink()
    return folder, paths


def assert_complete(path: Path, n_planes: int):
    meta = read_output_metadata(path)
    assert meta and meta["kind"] == "reconstruction" and "request" in meta, path
    with tifffile.TiffFile(path) as tif:
        data = tif.series[0].asarray()
    assert data.size == n_planes * 128 * 128 and np.isfinite(data).all() and data.std() > 0


@pytest.mark.slow
def test_two_concurrent_batches_into_one_folder_leave_every_output_complete(inputs, tmp_path):
    folder, paths = inputs
    out = tmp_path / "out"
    a = cli("batch", *paths, "-o", out, "--workers", 1, "--no-progress")
    b = cli("batch", *paths, "-o", out, "--workers", 1, "--no-progress")
    (ra, oa, ea), (rb, ob, eb) = finish(a), finish(b)
    assert ra == 0 and rb == 0, ea + eb
    assert "Traceback" not in ea + eb and "FileNotFoundError" not in ea + eb
    assert sorted(p.name for p in out.iterdir()) == [f"cell{i}_sim.ome.tif" for i in range(4)]  # no .part
    for i in range(4):
        assert_complete(out / f"cell{i}_sim.ome.tif", 6)
    counts = [int(s.split("batch: ")[1].split(" reconstructed")[0]) for s in (oa, ob)]
    assert sum(counts) >= 4  # each output was made by one of them; the other kept it


@pytest.mark.slow
def test_rerun_with_other_settings_is_reported_not_skipped(inputs, tmp_path):
    folder, paths = inputs
    out = tmp_path / "out"
    assert finish(cli("batch", paths[0], "-o", out, "--no-progress"))[0] == 0
    code, stdout, err = finish(cli("batch", paths[0], "-o", out, "--no-progress"))
    assert code == 0 and "skipped" in stdout
    stamp = (out / "cell0_sim.ome.tif").stat().st_mtime_ns
    code, stdout, err = finish(cli("batch", paths[0], "-o", out, "--wiener", 0.2, "--no-progress"))
    assert code == 1 and "made with other settings (wiener)" in err and len(err.strip().splitlines()) == 1
    assert (out / "cell0_sim.ome.tif").stat().st_mtime_ns == stamp  # never removed without --overwrite
    code, stdout, err = finish(cli("batch", paths[0], "-o", out, "--wiener", 0.2, "--overwrite", "--no-progress"))
    assert code == 0
    assert read_output_metadata(out / "cell0_sim.ome.tif")["request"]["wiener"] == 0.2


@pytest.mark.slow
def test_output_folder_equal_to_the_input_folder_does_not_read_its_own_outputs(inputs, tmp_path):
    folder, paths = inputs
    work = tmp_path / "work"
    work.mkdir()
    (work / "cell0.tif").write_bytes(paths[0].read_bytes())
    assert finish(cli("batch", work, "-o", work, "--no-progress"))[0] == 0
    code, stdout, err = finish(cli("batch", work, "-o", work, "--no-progress"))
    assert code == 0, err
    assert "1 skipped" in stdout and "0 reconstructed" in stdout
    assert sorted(p.name for p in work.iterdir()) == ["cell0.tif", "cell0_sim.ome.tif"]


def _children(pid: int) -> set[int]:
    kids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.add(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_with_workers(paths, out, **kwargs):
    proc = cli("batch", *paths, "-o", out, "--scheduler", "processes", "--workers", 2, "--no-progress", **kwargs)
    deadline, kids = time.monotonic() + 120, set()
    while time.monotonic() < deadline and proc.poll() is None:
        kids = {k for k in _children(proc.pid)
                if "spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")}
        if len(kids) >= 2:
            break
        time.sleep(0.1)
    assert len(kids) >= 2, "the worker processes did not start"
    return proc, kids


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "sigint", "sigterm"])
def test_stopping_a_process_batch_leaves_no_workers_and_no_partial_files(inputs, tmp_path, how):
    folder, paths = inputs
    out = tmp_path / "out"
    proc, kids = _start_with_workers(paths, out, start_new_session=True)
    if how == "kill":
        proc.send_signal(signal.SIGKILL)
    elif how == "sigint":  # Ctrl-C: the whole foreground process group gets it
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids), f"orphaned workers after {how}"
    if how != "kill":
        assert proc.returncode == 130
        assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    code, stdout, err = finish(cli("batch", *paths, "-o", out, "--no-progress"))  # the rerun completes
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"cell{i}_sim.ome.tif" for i in range(4)]
