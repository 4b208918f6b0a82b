"""The command line, run as a user would: through a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.io import read_raw

from .conftest import cli_simulated
from .conftest import cli_subprocess as run

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "filaments_3x3.tif"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    return cli_simulated(tmp_path_factory.mktemp("sim") / "raw.tif", "--size", 128, "--seed", 3)


@pytest.mark.slow
def test_simulate_writes_stack_truth_and_parameters(simulated):
    raw = read_raw(simulated)
    assert raw.frames.shape == (9, 128, 128) and raw.frames.dtype == np.uint16
    assert raw.pixel_size_um == pytest.approx(0.08) and raw.na == 1.4
    truth = read_raw(simulated.with_name("raw_truth.tif"), require_frames=False)
    assert truth.frames.shape == (256, 256) and truth.pixel_size_um == pytest.approx(0.04)
    params = json.loads(simulated.with_name("raw_params.json").read_text())
    assert len(params["angles"]) == 3 and len(params["angles"][0]["phases_rad"]) == 3


@pytest.mark.slow
def test_estimate_prints_json_close_to_the_truth(simulated):
    res = run("estimate", simulated)
    assert res.returncode == 0, res.stderr
    est = json.loads(res.stdout)
    truth = json.loads(simulated.with_name("raw_params.json").read_text())
    for a, b in zip(est["angles"], truth["angles"], strict=False):
        assert a["period_um"] == pytest.approx(b["period_um"], rel=0.005)
        assert abs((a["angle_deg"] - b["angle_deg"] + 90) % 180 - 90) < 0.2
    assert est["quality"][0]["grade"] in ("good", "excellent")


@pytest.mark.slow
def test_reconstruct_with_params_is_exact_and_scaled(simulated, tmp_path):
    out, wf = tmp_path / "sr.tif", tmp_path / "wf.tif"
    res = run("reconstruct", simulated, "-o", out, "--params", simulated.with_name("raw_params.json"),
              "--widefield", wf)
    assert res.returncode == 0, res.stderr
    sr = read_raw(out, require_frames=False)
    assert sr.frames.shape == (256, 256) and sr.frames.dtype == np.float32
    assert sr.pixel_size_um == pytest.approx(0.04)
    truth = json.loads(simulated.with_name("raw_params.json").read_text())
    assert sr.extra["params"]["angles"][0]["phases_rad"] == truth["angles"][0]["phases_rad"]
    chosen = float(res.stdout.split("Wiener w = ")[1].split()[0])  # from the data's noise by default
    assert sr.extra["filter"]["wiener"] == pytest.approx(chosen, rel=1e-2) and 0.005 < chosen < 1.0
    assert "pattern imprint" in res.stdout and "border cross" in res.stdout and "normalised residual" in res.stdout
    assert "WARNING" not in res.stderr
    assert read_raw(wf, require_frames=False).frames.shape == (256, 256)
    again = run("reconstruct", simulated, "-o", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.slow
def test_reconstruct_warns_when_the_pattern_is_in_the_result(simulated, tmp_path):
    params = json.loads(simulated.with_name("raw_params.json").read_text())
    for angle in params["angles"]:  # wrong phase steps: the bands mix and the stripes stay in the image
        angle["phases_rad"] = [p + 1.0 * i for i, p in enumerate(angle["phases_rad"])]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(params))
    res = run("reconstruct", simulated, "-o", tmp_path / "sr.tif", "--params", bad, "--wiener", "0.05")
    assert res.returncode == 0, res.stderr
    assert "Wiener w =" not in res.stdout  # an explicit w is used as given
    assert "WARNING: do not trust this result: the illumination pattern shows" in res.stderr


@pytest.mark.slow
def test_sample_data_reconstructs(tmp_path):
    res = run("reconstruct", SAMPLE, "-o", tmp_path / "sr.tif", "--wiener", 0.1)
    assert res.returncode == 0, res.stderr
    assert "estimated 3 angles" in res.stdout


def write(path, data):
    tifffile.imwrite(path, data)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("make, flags, message", [
    (lambda p: p / "missing.tif", [], "file not found"),
    (lambda p: (p / "junk.tif").write_bytes(b"\x00garbage" * 50) and p / "junk.tif", [], "cannot read"),
    (lambda p: write(p / "one.tif", np.ones((64, 64), np.uint16)), [], "single 2-D image"),
    (lambda p: write(p / "ten.tif", np.ones((10, 64, 64), np.uint16)), ["--angles", 3, "--phases", 3],
     "10 frames cannot be split"),
    (lambda p: write(p / "nan.tif", np.full((9, 64, 64), np.nan, np.float32)), [], "NaN"),
    (lambda p: write(p / "small.tif", np.random.rand(9, 16, 16).astype(np.float32)), [], "too small"),
    (lambda p: write(p / "flat.tif", np.full((9, 64, 64), 7, np.uint16)), [], "constant"),
    (lambda p: write(p / "noise.tif", np.random.default_rng(0).poisson(30, (9, 128, 128)).astype(np.uint16)), [],
     "no illumination pattern detected for angle 0"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, make, flags, message):
    path = make(tmp_path)
    out = tmp_path / "out.tif"
    res = run("reconstruct", path, "-o", out, "--pixel-size-um", 0.08, "--na", 1.4, "--wavelength-nm", 525, *flags)
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not out.exists()


def test_missing_optics_are_asked_for(tmp_path):
    path = write(tmp_path / "plain.tif", np.random.default_rng(0).poisson(30, (9, 64, 64)).astype(np.uint16))
    res = run("estimate", path)
    assert res.returncode == 2 and "give --na" in res.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    res = run("demo", SAMPLE, "--out", tmp_path / "demo")
    assert res.returncode == 0, res.stderr
    assert "SIM vs truth" in res.stdout and (tmp_path / "demo" / "reconstruction.tif").exists()


@pytest.mark.slow
def test_the_classical_path_never_imports_torch_dask_or_qt(tmp_path):
    code = ("import sys; from napari_sim_ml.cli import main; "
            f"rc = main(['reconstruct', r'{SAMPLE}', '-o', r'{tmp_path / 'sr.tif'}']); "
            "heavy = [m for m in ('torch', 'dask', 'qtpy', 'napari') if m in sys.modules]; "
            "print(rc, heavy)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.stdout.strip().splitlines()[-1] == "0 []", res.stdout + res.stderr


@pytest.mark.slow
def test_reconstruct_with_the_spectrum_optimised_filter(simulated, tmp_path):
    out = tmp_path / "hifi.tif"
    res = run("reconstruct", simulated, "-o", out, "--params", simulated.with_name("raw_params.json"),
              "--filter", "hifi")
    assert res.returncode == 0, res.stderr
    sr = read_raw(out, require_frames=False)
    assert sr.extra["filter"]["form"] == "hifi" and sr.extra["filter"]["wiener"] == pytest.approx(0.1)
    assert "pattern imprint" in res.stdout


@pytest.mark.slow
def test_a_parameters_file_states_the_layout_of_bare_frames(tmp_path):
    """Frames without layout metadata and a --params file: the file's angles × phases are used,
    not a layout detected from the frames (3 × 5 and 5 × 3 have the same frame count)."""
    sample = SAMPLE.with_name("mesh_3beam_3x5.tif")
    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, read_raw(sample).frames)  # no layout, no optics
    out = tmp_path / "sr.tif"
    res = run("reconstruct", bare, "-o", out, "--params", sample.with_name("mesh_3beam_3x5_params.json"),
              "--na", 1.4, "--wavelength-nm", 525, "--pixel-size-um", 0.08)
    assert res.returncode == 0, res.stderr
    assert "found from the frames" not in res.stderr  # stated by the file, not guessed
    layout = read_raw(out, require_frames=False).extra["layout"]
    assert (layout["n_angles"], layout["n_phases"]) == (3, 5)
