"""``--k-from PARAMS.json`` (calibration reuse) through the command line, as a user runs it."""

import json

import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.parameters import wrap_phase

from .conftest import cli_simulated
from .conftest import cli_subprocess as run


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A simulated stack, its true parameters, and a 'calibration' with the true k but other
    phases (+1 rad) and modulation (0.5), as another acquisition of the instrument would have."""
    folder = tmp_path_factory.mktemp("kfrom")
    raw = cli_simulated(folder / "raw.tif", "--size", 128, "--seed", 5, "--photons", 1000)
    truth = json.loads(raw.with_name("raw_params.json").read_text())
    calib = json.loads(json.dumps(truth))
    for a in calib["angles"]:
        a["phases_rad"] = [p + 1.0 for p in a["phases_rad"]]
        a["modulation"] = [0.5]
    path = folder / "calibration.json"
    path.write_text(json.dumps(calib))
    return raw, truth, path


def test_estimate_k_from_keeps_k_and_refits_the_phases(calibrated):
    raw, truth, calib = calibrated
    res = run("estimate", raw, "--k-from", calib)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for t, e in zip(truth["angles"], out["angles"], strict=True):
        assert e["k_cycles_per_um"] == pytest.approx(t["k_cycles_per_um"], rel=1e-12)  # kept, not re-estimated
        assert max(abs(wrap_phase(a - b)) for a, b in zip(t["phases_rad"], e["phases_rad"], strict=True)) < 0.05
        assert abs(e["modulation"][0] - t["modulation"][0]) < 0.1
    assert all(q["grade"] == "excellent" and q["margin"] is not None for q in out["quality"])


def test_reconstruct_k_from_says_what_it_did(calibrated, tmp_path):
    raw, _, calib = calibrated
    res = run("reconstruct", raw, "-o", tmp_path / "sim.tif", "--k-from", calib)
    assert res.returncode == 0, res.stderr
    assert f"phases refitted at the k of {calib}" in res.stdout
    image = tifffile.imread(tmp_path / "sim.tif")
    assert image.shape == (256, 256) and np.isfinite(image).all()


def test_k_from_and_params_exclude_each_other(calibrated, tmp_path):
    raw, _, calib = calibrated
    res = run("reconstruct", raw, "-o", tmp_path / "x.tif", "--k-from", calib, "--params", calib)
    assert res.returncode == 2 and "--k-from and --params exclude each other" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.tif").exists()
    res = run("batch", raw, "-o", tmp_path / "out", "--k-from", calib, "--params", calib)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_a_calibration_with_other_angles_is_refused_in_one_line(calibrated, tmp_path):
    raw, truth, _ = calibrated
    two = {**truth, "angles": truth["angles"][:2]}
    path = tmp_path / "two.json"
    path.write_text(json.dumps(two))
    res = run("estimate", raw, "--k-from", path, "--angles", 3, "--phases", 3)
    assert res.returncode == 2, res.stdout
    assert "2 angles but the stack has 3" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_batch_k_from_refits_every_input(calibrated, tmp_path):
    raw, _, calib = calibrated
    res = run("batch", raw, "-o", tmp_path / "out", "--k-from", calib, "--no-progress", "--workers", 1)
    assert res.returncode == 0, res.stderr
    assert f"k from {calib}" in res.stdout
