"""Issue 11 ("nothing lost, nothing silently wrong"): the command line refuses instead of
losing files or replacing values, and says so in one line with exit status 2.

Fast: tiny 64² simulated stacks; most cases run ``cli.main`` in this process (the same
code path as the console script), a few through a subprocess as a user would."""

import hashlib
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sim_ml import cli
from napari_sim_ml.engine.io import read_raw

from .conftest import cli_subprocess


def call(capsys, *argv):
    """Run the CLI in this process; (exit status, stdout, stderr lines)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def snapshot(folder: Path) -> dict[str, str]:
    """name → content hash of every file (hidden ones too) under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(capsys, folder, *argv, match=None):
    before = snapshot(folder)
    code, _, err = call(capsys, *argv)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("napari-sim-ml: error: "), err
    if match:
        assert match in err[0], err[0]
    assert snapshot(folder) == before  # nothing written, nothing changed
    return err[0]


@pytest.fixture()
def raw64(tmp_path, capsys):
    raw = tmp_path / "raw.tif"
    code, _, err = call(capsys, "simulate", "-o", raw, "--size", 64, "--seed", 1)
    assert code == 0, err
    return raw


# ---------------------------------------------------------------- items 2-4
def test_estimate_json_obeys_overwrite_and_never_replaces_an_input(raw64, capsys):
    params = raw64.with_name("raw_params.json")
    assert_refused(capsys, raw64.parent, "estimate", raw64, "--json", params, match="--overwrite")
    assert_refused(capsys, raw64.parent, "estimate", raw64, "--json", raw64, "--overwrite", match="is an input")
    assert_refused(capsys, raw64.parent, "estimate", raw64, "--json", raw64.parent, match="is a folder")
    code, _, err = call(capsys, "estimate", raw64, "--json", params, "--overwrite")
    assert code == 0, err and json.loads(params.read_text())["quality"]


def test_an_output_equal_to_an_input_or_another_output_is_refused(raw64, capsys):
    folder = raw64.parent
    assert_refused(capsys, folder, "reconstruct", raw64, "-o", raw64, "--overwrite", match="is an input")
    assert_refused(capsys, folder, "reconstruct", raw64, "-o", folder / "a.tif", "--widefield", folder / "a.tif",
                   match="two outputs")
    params = raw64.with_name("raw_params.json")
    assert_refused(capsys, folder, "reconstruct", raw64, "-o", folder / "x.tif", "--widefield", params,
                   "--params", params, "--overwrite", match="is an input")


def test_every_output_is_checked_before_anything_is_read(raw64, capsys, monkeypatch):
    def must_not_run(*a, **k):
        raise AssertionError("the input was read before the outputs were checked")

    monkeypatch.setattr(cli, "read_raw", must_not_run)
    folder = raw64.parent
    assert_refused(capsys, folder, "reconstruct", raw64, "-o", folder / "sr.tif", "--widefield",
                   folder / "nodir" / "wf.tif", match="does not exist")
    assert_refused(capsys, folder, "reconstruct", raw64, "-o", folder / "nodir" / "p.tif", "--method", "pinn",
                   match="does not exist")


def test_simulate_on_a_full_disk_leaves_none_of_its_three_files(tmp_path, capsys, monkeypatch):
    import errno

    real, calls = tifffile.imwrite, []

    def full(target, *a, **k):
        calls.append(target)
        if len(calls) == 2:  # the truth: the raw stack was already written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(target, *a, **k)

    monkeypatch.setattr(tifffile, "imwrite", full)
    msg = assert_refused(capsys, tmp_path, "simulate", "-o", tmp_path / "raw.tif", "--size", 64)
    assert "No space left on device" in msg and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_second_demo_touches_nothing(tmp_path, capsys):
    out = tmp_path / "D"
    code, _, err = call(capsys, "demo", "--out", out)
    assert code == 0, err
    (out / "notes.txt").write_text("the user's own file")
    assert_refused(capsys, tmp_path, "demo", "--out", out, match="--overwrite")


# ---------------------------------------------------------------- items 6-8
@pytest.mark.parametrize("flags, match", [
    (["--pixel-size-um", "0"], "pixel size 0"),
    (["--na", "0"], "numerical aperture 0"),
    (["--angles", "0"], "0 angles"),
    (["--method", "pinn", "--iterations", "0"], "--iterations must be at least 1"),
    (["--mode", "faithful"], "only applies to --method pinn"),
    (["--na", "1.6"], "refractive index of oil"),
    (["--na", "1.45", "--immersion-index", "1.33"], "above the immersion"),
    (["-o-png"], "ending in .tif"),
])
def test_invalid_values_are_refused_not_replaced(raw64, capsys, flags, match):
    out = ["-o", raw64.parent / "x.png"] if flags == ["-o-png"] else ["-o", raw64.parent / "sr.tif", *flags]
    assert_refused(capsys, raw64.parent, "reconstruct", raw64, *out, match=match)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["angles"][0].update(k_cycles_per_um=[0.0, 0.0]), "k is 0"),
    (lambda d: d["angles"][0].update(modulation=[50.0]), "modulation 50.0 is outside"),
    (lambda d: d["angles"][0].update(modulation=[-1.0]), "modulation -1.0 is outside"),
    (lambda d: d["angles"][0].update(k_cycles_per_um=[20.0, 1.0]), "beyond the OTF support"),
    (lambda d: d["angles"][0].update(k_cycles_per_um=["3.3", 1.0]), "must be two numbers"),
    (lambda d: d.update(pixel_size_um="0.08"), "pixel_size_um must be a number"),
    (lambda d: d.update(angles={}), "'angles' must be a non-empty list"),
])
def test_parameters_json_physical_range_checks(raw64, capsys, edit, match):
    data = json.loads(raw64.with_name("raw_params.json").read_text())
    edit(data)
    bad = raw64.with_name("bad.json")
    bad.write_text(json.dumps(data))
    assert_refused(capsys, raw64.parent, "reconstruct", raw64, "-o", raw64.parent / "sr.tif", "--params", bad,
                   match=match)


def test_complex_input_is_refused(tmp_path, capsys):
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((9, 64, 64)) * (1 + 1j)).astype(np.complex64))
    assert_refused(capsys, tmp_path, "estimate", path, "--na", 1.4, "--wavelength-nm", 525, "--pixel-size-um",
                   0.08, match="complex values")


def _ome_with_objective(path: Path, frames: np.ndarray, na: float, immersion: str) -> None:
    n, ny, nx = frames.shape
    xml = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
           f'<Instrument ID="Instrument:0"><Objective ID="Objective:0" LensNA="{na}" Immersion="{immersion}"/>'
           '</Instrument><Image ID="Image:0"><InstrumentRef ID="Instrument:0"/>'
           '<ObjectiveSettings ID="Objective:0"/>'
           f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="{nx}" SizeY="{ny}" SizeC="1" '
           f'SizeZ="{n}" SizeT="1" PhysicalSizeX="0.08" PhysicalSizeY="0.08"><Channel ID="Channel:0:0" '
           'SamplesPerPixel="1" EmissionWavelength="525"/>'
           f'<TiffData IFD="0" PlaneCount="{n}"/></Pixels></Image></OME>')
    tifffile.imwrite(path, frames, description=xml, metadata=None)


def test_na_above_the_files_immersion_medium_is_refused(raw64, capsys):
    frames = read_raw(raw64).frames
    water = raw64.with_name("water.ome.tif")
    _ome_with_objective(water, frames, 1.4, "Water")
    assert read_raw(water).immersion_index == pytest.approx(1.333) and read_raw(water).na == 1.4
    assert_refused(capsys, raw64.parent, "estimate", water, match="above the immersion medium's refractive index")
    oil = raw64.with_name("oil.ome.tif")
    _ome_with_objective(oil, frames, 1.4, "Oil")
    code, out, err = call(capsys, "estimate", oil)
    assert code == 0, err


# ---------------------------------------------------------------- item 9
def test_unwritable_folder_and_scheduler_errors_are_one_line(raw64, capsys):
    assert_refused(capsys, raw64.parent, "reconstruct", raw64, "-o", "/proc/sr.tif", match="cannot write into")
    t0 = time.perf_counter()
    assert_refused(capsys, raw64.parent, "batch", raw64, "-o", raw64.parent / "out", "--scheduler", "bogus",
                   match="--scheduler takes")
    assert time.perf_counter() - t0 < 5


@pytest.mark.slow
def test_truncated_tiff_is_named_and_tifffile_stays_quiet(raw64, tmp_path):
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw64.read_bytes()[: raw64.stat().st_size // 2])
    res = cli_subprocess("estimate", cut, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()], res.stderr  # one line, no tifffile log
    assert "cut.tif is truncated or damaged" in res.stderr
    out = tmp_path / "out"
    res = cli_subprocess("batch", cut, "-o", out, "--no-progress", timeout=120)
    assert res.returncode == 1 and "truncated or damaged" in res.stderr and "IndexError" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_all_negative_data_are_reported(raw64, capsys):
    frames = read_raw(raw64).frames.astype(np.float32)
    neg = raw64.with_name("neg.tif")
    tifffile.imwrite(neg, -frames)
    flags = ["--na", 1.4, "--wavelength-nm", 525, "--pixel-size-um", 0.08,
             "--params", raw64.with_name("raw_params.json")]
    assert_refused(capsys, raw64.parent, "reconstruct", neg, "-o", raw64.parent / "sr.tif", *flags,
                   match="mean of zero or below")


def test_a_bad_time_point_is_named(raw64, capsys):
    frames = read_raw(raw64).frames.astype(np.float32)
    series = np.concatenate([frames, frames, np.full_like(frames, 7.0)])  # time point 2 is constant
    path = raw64.with_name("series.tif")
    tifffile.imwrite(path, series)
    flags = ["--na", 1.4, "--wavelength-nm", 525, "--pixel-size-um", 0.08, "--angles", 3, "--phases", 3]
    assert_refused(capsys, raw64.parent, "reconstruct", path, "-o", raw64.parent / "sr.tif", *flags,
                   "--params", raw64.with_name("raw_params.json"), match="time point 2")


# ---------------------------------------------------------------- items 11-12
def test_a_tiff_otf_is_recognised_not_read_as_a_psf(raw64, capsys):
    otf = np.zeros((3, 129, 130), np.float32)
    otf[:, 0, 0] = 1.0
    otf[:, :, 2:] = np.linspace(0.9, 0.0, 128)[None, None, :] * 0.5
    path = raw64.with_name("otf.tif")
    tifffile.imwrite(path, otf)
    assert_refused(capsys, raw64.parent, "reconstruct", raw64, "-o", raw64.parent / "sr.tif", "--otf", path,
                   match="holds an OTF")


def test_the_omx_tiff_otf_is_recognised(data_dir, tmp_path, capsys):
    omx = data_dir / "omx-3d-sim-64px"
    assert_refused(capsys, tmp_path, "reconstruct", omx / "raw.tif", "-o", tmp_path / "sr.tif", "--otf",
                   omx / "otf.tif", "--na", 1.42, "--wavelength-nm", 528, "--pixel-size-um", 0.08,
                   match="holds an OTF")


def test_demo_takes_the_optics_it_asks_for(raw64, tmp_path, capsys):
    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, read_raw(raw64).frames)  # no metadata at all
    msg = assert_refused(capsys, tmp_path, "demo", bare, "--out", tmp_path / "D")
    assert "give --" in msg
    code, out, err = call(capsys, "demo", bare, "--out", tmp_path / "D", "--na", 1.4, "--wavelength-nm", 525,
                          "--pixel-size-um", 0.08)
    assert code == 0, err
    assert (tmp_path / "D" / "reconstruction.tif").exists()


@pytest.mark.slow
def test_a_real_full_disk_leaves_nothing_and_says_so(tmp_path):
    """On a 120 kB tmpfs (needs root to mount; skipped otherwise): simulate, reconstruct and batch
    end with one line naming the full device, and no half-written file stays."""
    import os

    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        sim = cli_subprocess("simulate", "-o", mnt / "raw.tif", "--size", "64", timeout=120)
        assert sim.returncode == 2 and "no space left on the device" in sim.stderr.lower()
        assert len(sim.stderr.strip().splitlines()) == 1 and list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
