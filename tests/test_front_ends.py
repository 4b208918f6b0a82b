"""The front ends share one pipeline: no private imports between them, no cycle, small modules."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "napari_sim_ml"
FRONT_ENDS = ("cli", "batch", "denoise_cli")
MINE = ("cli.py", "batch.py", "denoise_cli.py", "cli_options.py", "executor.py", "_writer.py", "_sample_data.py",
        "engine/io.py", "engine/writers.py", "engine/metadata.py", "engine/pipeline.py", "engine/methods.py")


def imports(path: Path) -> list[tuple[str, str, bool]]:
    """(module, name, at module level) of every ``from .x import y`` in a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    return [(node.module or "", alias.name, id(node) in top)
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
            for alias in node.names]


@pytest.mark.parametrize("front", FRONT_ENDS)
def test_no_front_end_imports_another_front_ends_private_names(front):
    found = [(m, n) for m, n, _ in imports(PKG / f"{front}.py") if m in FRONT_ENDS and n.startswith("_")]
    assert found == []


def test_the_shared_options_module_imports_no_front_end():
    assert not [m for m, _, _ in imports(PKG / "cli_options.py") if m in FRONT_ENDS]
    assert not [m for m, _, _ in imports(PKG / "engine" / "pipeline.py") if m.split(".")[0] in FRONT_ENDS]


def test_engine_pipeline_modules_do_not_import_each_other_back():
    """lazy.PlaneJob and the pipeline share engine/methods.py; metadata.py imports nothing of the engine but errors."""
    assert "pipeline" not in {m for m, _, _ in imports(PKG / "engine" / "lazy.py")}
    assert "pipeline" not in {m for m, _, _ in imports(PKG / "engine" / "methods.py")}
    assert {m for m, _, _ in imports(PKG / "engine" / "metadata.py")} <= {"errors"}


@pytest.mark.parametrize("name", MINE)
def test_module_size(name):
    assert len((PKG / name).read_text().splitlines()) <= 400


def test_old_and_new_raw_metadata_give_the_same_reconstruction(tmp_path):
    """A raw file of schema 0 (camera_offset) and one of schema 1 (background): same offset, same pixels."""
    import numpy as np
    import tifffile

    from napari_sim_ml import cli
    from napari_sim_ml.engine.io import read_raw, write_tiff
    from napari_sim_ml.engine.metadata import SCHEMA_VERSION
    from napari_sim_ml.engine.simulate import simulate_acquisition

    sim = simulate_acquisition("filaments", size=64, photons=300.0, seed=2)
    frames = np.clip(np.rint(sim.raw), 0, 65535).astype(np.uint16).reshape(-1, 64, 64)
    optics = {"na": sim.optics.na, "wavelength_nm": sim.optics.wavelength_nm, "pixel_size_um": sim.optics.pixel_size_um}
    layout = {"n_angles": 3, "n_phases": 3, "n_z": 1, "order": "PAZ"}
    write_tiff(tmp_path / "old.tif", frames, sim.optics.pixel_size_um,
               {"kind": "raw", "optics": optics, "layout": layout, "camera_offset": 100.0})
    write_tiff(tmp_path / "new.tif", frames, sim.optics.pixel_size_um,
               {"schema": SCHEMA_VERSION, "kind": "raw", "optics": optics, "layout": layout, "background": 100.0})
    for name in ("old", "new"):
        assert cli.main(["reconstruct", str(tmp_path / f"{name}.tif"), "-o", str(tmp_path / f"{name}_sr.tif"),
                         "--wiener", "0.05"]) == 0
    old, new = (tifffile.imread(tmp_path / f"{n}_sr.tif") for n in ("old", "new"))
    assert np.array_equal(old, new)
    meta = read_raw(tmp_path / "old_sr.tif", require_frames=False).extra
    assert meta["schema"] == SCHEMA_VERSION and meta["background"] == 100.0 and "camera_offset" not in meta
    assert meta["optics"]["pixel_size_um"] == sim.optics.pixel_size_um / 2
    # without any offset in the file the result differs: the offset was really read
    write_tiff(tmp_path / "none.tif", frames, sim.optics.pixel_size_um, {"kind": "raw", "optics": optics,
                                                                         "layout": layout})
    assert cli.main(["reconstruct", str(tmp_path / "none.tif"), "-o", str(tmp_path / "none_sr.tif"),
                     "--wiener", "0.05"]) == 0
    assert not np.array_equal(tifffile.imread(tmp_path / "none_sr.tif"), old)


def test_the_dock_reconstructs_through_the_pipelines_per_plane_method():
    """The dock's session prepares no bands itself: it calls engine.methods.reconstruct_plane, as iter_planes does
    for the CLI and batch (only the live slider filters the bands it cached)."""
    for path in sorted((PKG / "session").glob("*.py")) + sorted((PKG / "_qt").glob("*.py")):
        names = [n for _, n, _ in imports(path)]
        assert "prepare_reconstruction" not in names, path.name
    assert "reconstruct_plane" in [n for _, n, _ in imports(PKG / "session" / "tasks.py")]
