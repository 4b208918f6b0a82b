"""The CLI's PINN path as a user runs it: σ map and residual map through a subprocess."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml.engine.io import read_raw

from .conftest import cli_simulated
from .conftest import cli_subprocess as run

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def raw64(tmp_path_factory):
    return cli_simulated(tmp_path_factory.mktemp("pinn-cli") / "raw.tif", "--size", 64, "--seed", 2)


@pytest.mark.slow
def test_reconstruct_pinn_writes_uncertainty_and_residual(raw64, tmp_path):
    out, sig, resid = tmp_path / "pinn.tif", tmp_path / "sigma.tif", tmp_path / "residual.tif"
    res = run("reconstruct", raw64, "-o", out, "--params", raw64.with_name("raw_params.json"), "--method", "pinn",
              "--iterations", 20, "--uncertainty", sig, "--uncertainty-samples", 2, "--residual", resid)
    assert res.returncode == 0, res.stderr
    assert "normalised residual" in res.stdout and "with pinn" in res.stdout
    image, sigma, residual = (read_raw(p, require_frames=False) for p in (out, sig, resid))
    assert image.frames.shape == sigma.frames.shape == (128, 128) and residual.frames.shape == (64, 64)
    assert image.pixel_size_um == pytest.approx(0.04) and sigma.pixel_size_um == pytest.approx(0.04)
    assert residual.pixel_size_um == pytest.approx(0.08)  # the residual lives on the camera grid
    img, s, r = (np.asarray(x.frames, np.float64) for x in (image, sigma, residual))
    assert np.isfinite(s).all() and (s > 0).all()
    # a σ in the image's units (not 0, not counts²), larger on the structure than on the dark background
    assert 1e-4 * np.ptp(img) < np.percentile(s, 90) < 0.2 * np.ptp(img)
    bright = img > np.percentile(img, 80)
    assert np.median(s[bright]) > 2 * np.median(s[img < np.percentile(img, 20)])
    assert np.isfinite(r).all() and 0.5 < np.median(r) < 3.0  # noise-normalised: about 1 where the fit holds
    kinds = [x.extra.get("kind") for x in (image, sigma, residual)]
    assert kinds == ["reconstruction", "uncertainty", "residual"], kinds
    assert image.extra["method"] == "pinn" and image.extra["pinn"]["iterations"] <= 20


def test_uncertainty_needs_the_pinn_and_refuses_too_few_samples(raw64, tmp_path):
    res = run("reconstruct", raw64, "-o", tmp_path / "w.tif", "--uncertainty", tmp_path / "s.tif")
    assert res.returncode == 2 and "only applies to --method pinn" in res.stderr
    res = run("reconstruct", raw64, "-o", tmp_path / "p.tif", "--method", "pinn", "--uncertainty",
              tmp_path / "s.tif", "--uncertainty-samples", 1)
    assert res.returncode == 2 and "at least 2" in res.stderr
    assert not (tmp_path / "p.tif").exists() and not (tmp_path / "s.tif").exists()
