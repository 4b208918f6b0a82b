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
