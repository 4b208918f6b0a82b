"""Issue 11, items 10 and 13-15: the CLI PINN's σ and residual maps, the torch thread count
after a failed fit, the table tooltip, RadialOTF equality, the wiener docstring and the
plugin writer's defects."""

import json

import numpy as np
import pytest
import tifffile

from napari_sim_ml import cli
from napari_sim_ml._writer import write_image, write_layer
from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.io import read_raw
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import Optics


@pytest.fixture()
def raw64(tmp_path, capsys):
    raw = tmp_path / "raw.tif"
    assert cli.main(["simulate", "-o", str(raw), "--size", "64", "--seed", "2"]) == 0
    capsys.readouterr()
    return raw


@pytest.mark.slow
def test_cli_pinn_writes_sigma_and_residual(tmp_path, capsys):
    pytest.importorskip("torch")
    raw = tmp_path / "raw.tif"  # 32² frames and 2 iterations (+ 2 × 15 bootstrap steps): seconds
    assert cli.main(["simulate", "-o", str(raw), "--size", "32", "--seed", "2"]) == 0
    folder = raw.parent
    code = cli.main(["reconstruct", str(raw), "-o", str(folder / "p.tif"), "--method", "pinn",
                     "--iterations", "2", "--uncertainty", str(folder / "s.tif"), "--uncertainty-samples", "2",
                     "--residual", str(folder / "r.tif"), "--params", str(raw.with_name("raw_params.json"))])
    out, err = capsys.readouterr()
    assert code == 0, err
    image = read_raw(folder / "p.tif", require_frames=False).frames
    sigma = read_raw(folder / "s.tif", require_frames=False).frames
    residual = read_raw(folder / "r.tif", require_frames=False).frames
    assert sigma.shape == image.shape == (64, 64) and residual.shape == (32, 32)
    assert np.isfinite(sigma).all() and (sigma > 0).all() and np.isfinite(residual).all()
    assert "s.tif" in out and "r.tif" in out


def test_pinn_only_flags_with_wiener_are_refused(raw64, capsys):
    for flags in (["--uncertainty", "s.tif"], ["--residual", "r.tif"], ["--seed", "3"], ["--iterations", "5"]):
        assert cli.main(["reconstruct", str(raw64), "-o", str(raw64.parent / "x.tif"), *flags]) == 2
        assert "only applies to --method pinn" in capsys.readouterr().err


def test_a_failed_pinn_call_restores_the_torch_thread_count():
    torch = pytest.importorskip("torch")
    from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn
    from napari_sim_ml.engine.simulate import simulate_acquisition

    sim = simulate_acquisition("filaments", 32, seed=1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(SimInputError, match="PSF"):
            fit_pinn(sim.raw, sim.optics, sim.params, PinnSettings(threads=2, iterations=1),
                     psf=np.full((5, 5), np.nan))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_table_tooltip_states_the_estimators_grades():
    from napari_sim_ml._qt._table import COLUMNS, TOOLTIPS
    from napari_sim_ml.engine.estimate import QUALITY_GRADES

    tip = TOOLTIPS[COLUMNS.index("quality")]  # the dock branch added grade and margin columns after it
    assert "< 6.5 inadequate" in tip and "6.5-12 low" in tip and "12-30 good" in tip and "> 30 excellent" in tip
    assert [g for _, g in QUALITY_GRADES] == ["inadequate", "low", "good"]


def test_radial_otf_compares_and_hashes_by_value():
    optics = Optics()
    a, b = ideal_otf(optics), ideal_otf(optics)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != ideal_otf(optics, attenuation=0.5) and a != ideal_otf(Optics(na=1.2))


def test_wiener_module_docstring_reads_as_sentences():
    import napari_sim_ml.engine.wiener as wiener

    doc = wiener.__doc__
    assert ". an apodization" not in doc and "apodization A" in doc
    assert max(len(line) for line in doc.splitlines()) <= 100


# ---------------------------------------------------------------- item 15: the plugin writer
META = {"scale": (0.04, 0.04), "units": ("um", "um"), "name": "sr", "metadata": {}}


def test_writer_refuses_complex_data(tmp_path):
    with pytest.raises(SimInputError, match="complex"):
        write_image(str(tmp_path / "c.tif"), np.ones((8, 8), np.complex64), META)
    assert list(tmp_path.iterdir()) == []


def test_writer_keeps_large_integers_exact_or_refuses(tmp_path):
    exact = np.array([[0, 2**24], [7, 123456]], np.uint32).repeat(8, 0).repeat(8, 1)
    path = write_image(str(tmp_path / "a.tif"), exact, META)[0]
    np.testing.assert_array_equal(read_raw(path, require_frames=False).frames, exact)
    big = exact.copy()
    big[0, 0] = 2**24 + 1
    with pytest.raises(SimInputError, match="2\\^24"):
        write_image(str(tmp_path / "b.tif"), big, META)
    small = np.arange(64, dtype=np.int64).reshape(8, 8)
    out = read_raw(write_image(str(tmp_path / "s.tif"), small, META)[0], require_frames=False).frames
    assert out.dtype == np.uint16 and np.array_equal(out, small)


@pytest.mark.parametrize("scale", [0.0, float("nan"), -0.1])
def test_writer_refuses_a_bad_pixel_scale_in_a_sentence(tmp_path, scale):
    with pytest.raises(SimInputError, match="pixel size"):
        write_image(str(tmp_path / "z.tif"), np.ones((8, 8), np.float32), {**META, "scale": (scale, scale)})
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_rgb_layers_its_reader_would_refuse(tmp_path):
    with pytest.raises(SimInputError, match="RGB"):
        write_image(str(tmp_path / "rgb.tif"), np.zeros((8, 8, 3), np.uint8), {**META, "rgb": True})


def test_writer_appends_tif_instead_of_replacing_the_suffix(tmp_path):
    keep = tmp_path / "data.tif"
    keep.write_bytes(b"the user's other file")
    written = write_layer(tmp_path / "data.v2", np.ones((8, 8), np.float32), META)
    assert written == [str(tmp_path / "data.v2.tif")]
    assert keep.read_bytes() == b"the user's other file"
    with pytest.raises(SimInputError, match="exists"):  # napari asked about data.v2, not about data.v2.tif
        write_layer(tmp_path / "data.v2", np.zeros((8, 8), np.float32), META)
    assert json.loads(tifffile.TiffFile(written[0]).imagej_metadata["Info"])["napari_sim_ml"]["layer_name"] == "sr"
