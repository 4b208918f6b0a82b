"""train-denoiser and --denoiser through a subprocess, with a tiny model."""


import numpy as np
import pytest

from napari_sim_ml.engine.io import read_raw

from .conftest import cli_subprocess as run

TINY = ["--patch", "32", "--size", "48", "--width", "8", "--depth", "2", "--steps-per-epoch", "8",
        "--threads", "1"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dn")
    for name, photons in (("hi", 2000), ("lo", 60)):
        res = run("simulate", "-o", folder / f"{name}.tif", "--photons", photons, "--size", 64, "--seed", 5)
        assert res.returncode == 0, res.stderr
    out = folder / "m.pt"
    res = run("train-denoiser", "-o", out, "--simulate", 6, "--params", folder / "lo_params.json",
              "--photons", 60, "--epochs", 2, *TINY)
    assert res.returncode == 0, res.stderr
    assert "epoch 2/2" in res.stdout and "wrote" in res.stdout
    return folder, out


@pytest.mark.slow
def test_train_resume_and_refuse_overwrite(model):
    folder, out = model
    res = run("train-denoiser", "-o", out, "--simulate", 6, "--params", folder / "lo_params.json", "--epochs", 3,
              *TINY)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--resume" in res.stderr
    res = run("train-denoiser", "-o", out, "--resume", "--simulate", 6, "--params", folder / "lo_params.json",
              "--photons", 60, "--epochs", 3, *TINY)
    assert res.returncode == 0, res.stderr
    assert "epoch 3/3" in res.stdout and "epoch 1/3" not in res.stdout


@pytest.mark.slow
def test_reconstruct_with_the_denoiser_writes_frames_and_checks_them(model):
    folder, out = model
    res = run("reconstruct", folder / "lo.tif", "-o", folder / "sr.tif", "--params", folder / "lo_params.json",
              "--denoiser", out, "--denoised", folder / "den.tif", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert "data consistency: normalised residual mean" in res.stdout
    den = read_raw(folder / "den.tif")
    raw = read_raw(folder / "lo.tif")
    assert den.frames.shape == raw.frames.shape and not np.array_equal(den.frames, raw.frames)
    assert read_raw(folder / "sr.tif", require_frames=False).frames.shape == (128, 128)


@pytest.mark.slow
def test_batch_with_the_denoiser(model):
    folder, out = model
    res = run("batch", folder / "lo.tif", "-o", folder / "batch", "--params", folder / "lo_params.json",
              "--denoiser", out, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert (folder / "batch" / "lo_sim.ome.tif").exists()
    # the same image as reconstruct --denoiser: both choose the automatic w on the measured frames
    res = run("reconstruct", folder / "lo.tif", "-o", folder / "sr_b.tif", "--params", folder / "lo_params.json",
              "--denoiser", out)
    assert res.returncode == 0, res.stderr
    batch = np.squeeze(read_raw(folder / "batch" / "lo_sim.ome.tif", require_frames=False).frames)
    single = np.squeeze(read_raw(folder / "sr_b.tif", require_frames=False).frames)
    np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-4 * float(np.abs(single).max()))


@pytest.mark.slow
def test_mismatched_model_is_refused_in_one_line(model):
    folder, out = model
    res = run("reconstruct", folder / "lo.tif", "-o", folder / "x.tif", "--params", folder / "lo_params.json",
              "--denoiser", out, "--pixel-size-um", 0.1)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "trained for pixel size 0.08" in res.stderr
    assert not (folder / "x.tif").exists()


@pytest.mark.slow
def test_train_from_high_light_stacks(model, tmp_path):
    folder, _ = model
    res = run("train-denoiser", "-o", tmp_path / "t.pt", "--from-high", folder / "hi.tif", "--thin", 30,
              "--epochs", 1, *[a for a in TINY if a not in ("--size", "48")])
    assert res.returncode == 0, res.stderr
    assert "noise model of the high-light stacks: gain" in res.stdout and "(thinning)" in res.stdout
