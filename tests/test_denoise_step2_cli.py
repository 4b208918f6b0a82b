"""train-denoiser --step 2 and reconstruct/batch --step2 through a subprocess, with tiny models."""

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_sim_ml.engine.io import read_raw
from napari_sim_ml.engine.records import read_output_metadata

TINY = ["--patch", "32", "--width", "8", "--depth", "2", "--steps-per-epoch", "8", "--threads", "1"]
WARNING_START = "warning: step 2 (a denoiser of the reconstruction) can distort true structures"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "napari_sim_ml.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s2cli")
    res = run("simulate", "-o", folder / "lo.tif", "--photons", 60, "--size", 64, "--seed", 5)
    assert res.returncode == 0, res.stderr
    m2 = folder / "m2.pt"
    res = run("train-denoiser", "--step", 2, "-o", m2, "--simulate", 6, "--params", folder / "lo_params.json",
              "--photons", 60, "--size", 48, "--epochs", 2, *TINY)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count(WARNING_START) == 1 and res.stderr.strip().count("\n") == 0
    assert "epoch 2/2" in res.stdout and "trained step 2" in res.stdout and "(the plain reconstruction)" in res.stdout
    m1 = folder / "m1.pt"
    res = run("train-denoiser", "-o", m1, "--simulate", 4, "--params", folder / "lo_params.json", "--photons", 60,
              "--size", 48, "--epochs", 1, *TINY)
    assert res.returncode == 0, res.stderr
    return folder, m1, m2


@pytest.mark.slow
def test_reconstruct_with_step2_alone_and_after_step1(models):
    folder, m1, m2 = models
    res = run("reconstruct", folder / "lo.tif", "-o", folder / "s2.tif", "--params", folder / "lo_params.json",
              "--step2", m2, "--before-step2", folder / "plain.tif")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count(WARNING_START) == 1 and "Traceback" not in res.stderr
    assert "step 2 applied to 1 plane(s)" in res.stdout and "re-imaged against the frames" in res.stdout
    s2 = read_raw(folder / "s2.tif", require_frames=False).frames
    plain = read_raw(folder / "plain.tif", require_frames=False).frames
    assert s2.shape == plain.shape == (128, 128) and not np.array_equal(s2, plain)
    meta = read_output_metadata(folder / "s2.tif")
    assert meta["denoiser"]["step2"]["model"] == str(m2) and "re-imaged" in meta["denoiser"]["step2"]["check"]
    assert read_output_metadata(folder / "plain.tif").get("denoiser") is None  # the plain reconstruction says so
    # after step 1 (the model was trained without it: a note, not a refusal)
    res = run("reconstruct", folder / "lo.tif", "-o", folder / "s12.tif", "--params", folder / "lo_params.json",
              "--denoiser", m1, "--step2", m2)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count(WARNING_START) == 1 and "trained without a step-1 denoiser" in res.stderr
    meta = read_output_metadata(folder / "s12.tif")
    assert meta["denoiser"]["model"] == str(m1) and meta["denoiser"]["step2"]["model"] == str(m2)


@pytest.mark.slow
def test_wrong_kind_and_mismatched_models_are_refused_in_one_line(models):
    folder, m1, m2 = models
    out = folder / "x.tif"
    for flags, text in ((("--step2", m1), "is a step-1 model"), (("--denoiser", m2), "is a step-2 model"),
                        (("--step2", m2, "--pixel-size-um", 0.1), "trained for pixel size 0.08"),
                        (("--step2", m2, "--method", "pinn"), "not on the pinn"),
                        (("--step2", folder / "none.pt"), "not found"),
                        (("--before-step2", folder / "p.tif"), "give --step2")):
        res = run("reconstruct", folder / "lo.tif", "-o", out, "--params", folder / "lo_params.json", *flags)
        assert res.returncode == 2, (flags, res.stderr)
        errors = [line for line in res.stderr.strip().splitlines() if not line.startswith("warning: step 2")]
        assert len(errors) == 1 and text in errors[0], (flags, res.stderr)
        assert not out.exists()
    res = run("train-denoiser", "--step", 2, "-o", folder / "y.pt", "--from-high", folder / "lo.tif")
    assert res.returncode == 2 and "simulation only" in res.stderr and res.stderr.strip().count("\n") == 0
    res = run("train-denoiser", "-o", folder / "y.pt", "--simulate", 2, "--params", folder / "lo_params.json",
              "--step1", m1)
    assert res.returncode == 2 and "belong to --step 2" in res.stderr


@pytest.mark.slow
def test_batch_with_step2(models):
    folder, m1, m2 = models
    res = run("batch", folder / "lo.tif", "-o", folder / "batch", "--params", folder / "lo_params.json",
              "--step2", m2, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count(WARNING_START) == 1
    out = folder / "batch" / "lo_sim.ome.tif"
    meta = read_output_metadata(out)
    assert meta["denoiser"]["step2"]["model"] == str(m2)
    single = read_raw(folder / "s2.tif", require_frames=False).frames if (folder / "s2.tif").exists() else None
    batch = np.squeeze(read_raw(out, require_frames=False).frames)
    if single is not None:  # the same step 2 as reconstruct's (same pattern, same w choice)
        assert np.allclose(batch, single, atol=1e-3 * float(np.abs(single).max()))
    res = run("batch", folder / "lo.tif", "-o", folder / "batch2", "--params", folder / "lo_params.json",
              "--step2", m1, "--no-progress")
    assert res.returncode == 2 and "is a step-1 model" in res.stderr and res.stderr.strip().count("\n") == 0
    res = run("batch", folder / "lo.tif", "-o", folder / "batch3", "--params", folder / "lo_params.json",
              "--step2", m2, "--method", "pinn", "--no-progress")
    assert res.returncode == 2 and "use --method wiener" in res.stderr and res.stderr.strip().count("\n") == 0
    assert json.loads(json.dumps(meta["denoiser"]))  # JSON-ready
