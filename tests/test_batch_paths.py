"""Batch paths nothing else covered (issue 12 item 6), run as a user would (``python -m
napari_sim_ml.batch``): ``--method pinn`` (tiny: 64 px, 3 iterations) and ``--channel`` on a
two-channel OME-TIFF. Each output is checked against the engine run in-process on the same planes."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.io import FrameLayout, write_tiff
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import FilterSettings
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

from .conftest import cli_subprocess

pytestmark = pytest.mark.slow  # subprocesses that import dask (and torch for the PINN)

OFFSET = 100.0
W = 0.05


def batch(*args):
    return cli_subprocess(*args, "--no-progress", module="napari_sim_ml.batch")


def read_output(path: Path) -> tuple[np.ndarray, dict]:
    """An OME-TIFF output as (T, Z, Y, X) and the plugin's metadata in it."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        sizes = dict(zip(series.get_axes(False), series.get_shape(False), strict=True))
        data = series.asarray().reshape([sizes[a] for a in "TZYX"])
        description = tif.ome_metadata.split("<Description>")[1].split("</Description>")[0]
    meta = json.loads(description.replace("&quot;", '"').replace("&amp;", "&"))["napari_sim_ml"]
    return data, meta


def counts(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frames), 0, 65535).astype(np.uint16)


def scenes(n: int, size: int, seed: int):
    """``n`` noisy acquisitions of different scenes under one pattern: (n, 3, 3, Y, X) counts, and the pattern."""
    first = simulate_acquisition("filaments", size, photons=500, seed=seed, offset=OFFSET)
    planes = [first.raw] + [simulate_acquisition("filaments", size, photons=500, seed=seed + 1 + k, offset=OFFSET,
                                                 params=first.params).raw for k in range(n - 1)]
    return counts(np.stack(planes)), first


def test_batch_pinn_gives_the_engine_pinn_of_every_plane(tmp_path):
    frames, sim = scenes(2, 64, seed=11)  # two time points
    raw = tmp_path / "tiny.tif"
    write_tiff(raw, frames.reshape(-1, 64, 64), sim.optics.pixel_size_um,
               {"kind": "raw", "optics": asdict(sim.optics), "layout": asdict(FrameLayout()), "camera_offset": OFFSET})
    params = tmp_path / "params.json"
    params.write_text(json.dumps(sim.params.to_dict(sim.optics)))
    res = batch(raw, "-o", tmp_path / "out", "--method", "pinn", "--iterations", 3, "--params", params,
                "--workers", 1)
    assert res.returncode == 0, res.stderr
    out, meta = read_output(tmp_path / "out" / "tiny_sim.ome.tif")
    assert out.shape == (2, 1, 128, 128) and out.dtype == np.float32
    assert meta["method"] == "pinn" and meta["pinn"]["iterations"] == 3

    from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn

    settings = PinnSettings(iterations=3, uncertainty_samples=0)  # the defaults otherwise, as batch uses them
    wiener = []
    for t in range(2):
        plane = frames[t].astype(np.float32)
        expected = fit_pinn(plane, sim.optics, sim.params, settings, otf=ideal_otf(sim.optics),
                            background=OFFSET).image
        np.testing.assert_allclose(out[t, 0], expected, rtol=1e-3, atol=1e-3 * float(np.abs(expected).max()))
        prepared = prepare_reconstruction(plane, sim.optics, sim.params, ideal_otf(sim.optics), OFFSET)
        wiener.append(wiener_filter(prepared, FilterSettings(wiener=W)))
    # a PINN image, not the Wiener one, and time point 1 is its own scene
    assert np.abs(out[0, 0] - wiener[0]).mean() > 0.05 * np.abs(wiener[0]).mean()
    assert np.corrcoef(out[0, 0].ravel(), out[1, 0].ravel())[0, 1] < 0.9


def test_batch_channel_takes_that_channel_of_a_two_channel_file(tmp_path):
    frames, sim = scenes(2, 96, seed=21)  # channel c holds scene c, under one pattern
    ome = np.stack([frames[0], frames[1]]).reshape(1, 2, 9, 96, 96)  # T C Z Y X, the 9 frames on Z
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(path, ome, ome=True, metadata={"axes": "TCZYX", "PhysicalSizeX": sim.optics.pixel_size_um,
                                                     "PhysicalSizeY": sim.optics.pixel_size_um,
                                                     "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    params = tmp_path / "params.json"
    params.write_text(json.dumps(sim.params.to_dict(sim.optics)))
    common = ("--params", params, "--wiener", W, "--background", OFFSET, "--na", sim.optics.na,
              "--wavelength-nm", sim.optics.wavelength_nm, "--workers", 1)
    refused = batch(path, "-o", tmp_path / "none", *common)
    assert refused.returncode != 0 and "choose one with --channel" in refused.stderr
    outputs = []
    for channel in (0, 1):
        res = batch(path, "-o", tmp_path / f"c{channel}", "--channel", channel, *common)
        assert res.returncode == 0, res.stderr
        out, _ = read_output(tmp_path / f"c{channel}" / "two_sim.ome.tif")
        assert out.shape == (1, 1, 192, 192)
        prepared = prepare_reconstruction(frames[channel].astype(np.float32), sim.optics, sim.params,
                                          ideal_otf(sim.optics), OFFSET)
        np.testing.assert_allclose(out[0, 0], wiener_filter(prepared, FilterSettings(wiener=W)),
                                   rtol=1e-4, atol=1e-4)
        outputs.append(out[0, 0])
    assert np.corrcoef(outputs[0].ravel(), outputs[1].ravel())[0, 1] < 0.9  # two different scenes
