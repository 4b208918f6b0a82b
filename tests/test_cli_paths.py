"""CLI flags nothing else covered (issue 12 item 6), run as a user would, through a subprocess:
``--otf`` (a PSF file), ``--otf-attenuation``, ``--orders`` and a multi-plane ``reconstruct``.
Every output is checked against the engine run in-process on the same file with the same OTF."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import tifffile

from napari_sim_ml.engine.io import FrameLayout, arrange_frames, read_raw, write_tiff
from napari_sim_ml.engine.otf import ideal_otf, otf_from_file
from napari_sim_ml.engine.parameters import FilterSettings, Optics, load_parameters_json
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

from .conftest import cli_subprocess as run

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses (~3 s of CPU each)

OFFSET = 100.0
W = 0.05  # a fixed Wiener parameter: the CLI and the in-process reference filter alike


def write_raw(path: Path, frames: np.ndarray, optics: Optics, layout: FrameLayout) -> Path:
    counts = np.clip(np.rint(frames), 0, 65535).astype(np.uint16).reshape(-1, *frames.shape[-2:])
    write_tiff(path, counts, optics.pixel_size_um, {"kind": "raw", "optics": asdict(optics),
                                                    "layout": asdict(layout), "camera_offset": OFFSET})
    return path


@pytest.fixture(scope="module")
def two_beam(tmp_path_factory):
    """A 128 px 2-beam stack and its true parameters as a JSON file."""
    folder = tmp_path_factory.mktemp("paths")
    sim = simulate_acquisition("filaments", 128, photons=500, seed=4, offset=OFFSET)
    raw = write_raw(folder / "raw.tif", sim.raw, sim.optics, FrameLayout())
    params = folder / "params.json"
    params.write_text(json.dumps(sim.params.to_dict(sim.optics)))
    return raw, params, sim


def reference(raw_path: Path, params_path: Path, otf, layout: FrameLayout | None = None) -> np.ndarray:
    """The engine, in-process: every plane of the file, prepared with ``otf`` and filtered with w = W."""
    layout = layout or FrameLayout()
    raw = read_raw(raw_path)
    optics = Optics(raw.na, raw.wavelength_nm, raw.pixel_size_um)
    params, _ = load_parameters_json(params_path)
    planes = arrange_frames(raw.frames, layout)
    settings = FilterSettings(wiener=W)
    out = [wiener_filter(prepare_reconstruction(p, optics, params, otf, OFFSET), settings)
           for p in planes.reshape(-1, *planes.shape[2:])]
    return np.stack(out) if len(out) > 1 else out[0]


def reconstructed(raw, params, out, *flags) -> np.ndarray:
    res = run("reconstruct", raw, "-o", out, "--params", params, "--wiener", W, *flags)
    assert res.returncode == 0, res.stderr
    return read_raw(out, require_frames=False).frames


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def test_otf_attenuation_and_a_psf_file_are_the_otf_used(two_beam, tmp_path):
    raw, params, sim = two_beam
    plain = reconstructed(raw, params, tmp_path / "plain.tif")
    np.testing.assert_allclose(plain, reference(raw, params, ideal_otf(sim.optics)), rtol=1e-4, atol=1e-4)

    attenuated = reconstructed(raw, params, tmp_path / "att.tif", "--otf-attenuation", 0.4)
    expected = reference(raw, params, ideal_otf(sim.optics, attenuation=0.4))
    np.testing.assert_allclose(attenuated, expected, rtol=1e-4, atol=1e-4)
    assert rms(attenuated - plain) > 0.05 * rms(plain)  # the attenuated OTF changes the result

    # a PSF image (TIFF): that of an ideal NA 1.2 objective, sampled on the raw grid
    narrow = ideal_otf(Optics(1.2, sim.optics.wavelength_nm, sim.optics.pixel_size_um))
    f = scipy.fft.fftfreq(64, sim.optics.pixel_size_um)
    psf = scipy.fft.fftshift(np.real(scipy.fft.ifft2(narrow(np.hypot(f[:, None], f[None, :])))))
    psf_path = tmp_path / "psf.tif"
    tifffile.imwrite(psf_path, psf.astype(np.float32))
    measured = otf_from_file(psf_path, sim.optics.pixel_size_um)
    na12 = Optics(1.2, sim.optics.wavelength_nm, sim.optics.pixel_size_um)
    rho = np.linspace(0.0, 0.9, 10) * na12.cutoff_cycles_per_um
    assert np.abs(measured(rho) - narrow(rho)).max() < 0.05  # the file's OTF is the NA 1.2 one
    from_psf = reconstructed(raw, params, tmp_path / "psf_sr.tif", "--otf", psf_path)
    np.testing.assert_allclose(from_psf, reference(raw, params, measured), rtol=1e-4, atol=1e-4)
    assert rms(from_psf - plain) > 0.05 * rms(plain)


def test_orders_chooses_the_bands_estimated(two_beam, tmp_path):
    raw, _, sim = two_beam
    refused = run("estimate", raw, "--orders", 2)  # 3 phases cannot separate orders 0, ±1, ±2
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "phases cannot separate" in refused.stderr

    three = simulate_acquisition("filaments", 128, n_phases=5, photons=300, seed=0, offset=OFFSET)
    raw3 = write_raw(tmp_path / "raw3.tif", three.raw, three.optics, FrameLayout(3, 5, 1, "PAZ"))
    for flags, n_orders in (((), 2), (("--orders", 2), 2), (("--orders", 1), 1)):
        res = run("estimate", raw3, *flags)
        assert res.returncode == 0, res.stderr
        est = json.loads(res.stdout)
        for got, truth in zip(est["angles"], three.params.angles, strict=True):
            assert len(got["modulation"]) == n_orders, flags
            # the fundamental k either way (with one order, the ±1 bands of 3-beam data)
            assert got["period_um"] == pytest.approx(truth.period_um, rel=0.002)
            if n_orders == 2:
                assert got["modulation"] == pytest.approx(list(truth.modulation), abs=0.1)


def test_a_time_lapse_z_stack_reconstructs_every_plane(tmp_path):
    """T = 2, Z = 2 (PAZ): four planes, plane k = the scene at 1 / (k + 1) of the photons; each output
    plane is the engine's for that plane, in (t, z) order."""
    sim = simulate_acquisition("filaments", 96, photons=800, seed=2, noise=False, offset=0.0)
    rng = np.random.default_rng(7)
    planes = [rng.poisson(sim.raw / (k + 1)) + OFFSET + rng.normal(0, 1, sim.raw.shape) for k in range(4)]
    layout = FrameLayout(3, 3, 2, "PAZ")
    raw = write_raw(tmp_path / "tz.tif", np.stack(planes), sim.optics, layout)
    params = tmp_path / "params.json"
    params.write_text(json.dumps(sim.params.to_dict(sim.optics)))
    out = reconstructed(raw, params, tmp_path / "tz_sr.tif")
    assert out.shape == (4, 192, 192)
    np.testing.assert_allclose(out, reference(raw, params, ideal_otf(sim.optics), layout), rtol=1e-4, atol=1e-4)
    means = [float(out[k][16:-16, 16:-16].mean()) for k in range(4)]
    assert means == pytest.approx([means[0] / (k + 1) for k in range(4)], rel=0.03)  # in (t, z) order
    # without --params: estimated once (middle z plane of time point 0) and used for every plane
    res = run("reconstruct", raw, "-o", tmp_path / "est.tif", "--wiener", W)
    assert res.returncode == 0, res.stderr
    assert "reconstructed 4 plane(s)" in res.stdout
    est = read_raw(tmp_path / "est.tif", require_frames=False)
    assert est.frames.shape == (4, 192, 192)
    got = est.extra["params"]["angles"]
    for a, truth in zip(got, sim.params.angles, strict=True):
        assert a["period_um"] == pytest.approx(truth.period_um, rel=0.003)
