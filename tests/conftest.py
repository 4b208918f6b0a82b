"""Shared test setup: torch before Qt, widget settings kept out of the user's home, the real data
(skipped visibly when absent), the ``gui`` marker set from the fixtures a test uses, and a
warning for tests that are slow but not marked so; :func:`cli_subprocess` runs the command line as a user does
(:func:`cli_simulated` writes a raw stack with it).

Fast loop (no viewer, nothing slow): ``pytest -m "not slow and not gui"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

try:  # torch must be imported before the QApplication exists (importing it later can crash)
    import torch  # noqa: F401
except ImportError:  # the classical parts run without torch
    pass

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # ../shared/data beside the checkout
MISSING_DATA = "../shared/data not found — real-data tests skipped"
# a test that uses one of these needs a napari viewer (or a QApplication) and is marked ``gui``
GUI_FIXTURES = frozenset({"make_napari_viewer", "make_napari_viewer_proxy", "qtbot", "qapp", "sim_viewer"})
UNMARKED_SLOW_S = float(os.environ.get("NAPARI_SIM_ML_SLOW_S", "10"))  # wall seconds (a loaded machine)


def cli_subprocess(*args: object, module: str = "napari_sim_ml.cli", cwd: str | Path | None = None,
                   timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m module args...`` in a subprocess as a user would; text stdout/stderr captured.

    The child inherits the environment (PYTHONPATH included), so it runs this checkout's package.
    """
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def cli_simulated(path: Path, *flags: object) -> Path:
    """Write a simulated raw stack to ``path`` with the CLI's ``simulate`` (``flags`` as on the command line)."""
    res = cli_subprocess("simulate", "-o", path, *flags)
    assert res.returncode == 0, res.stderr
    return path


@pytest.fixture(autouse=True)
def _isolated_widget_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SIM_ML_SETTINGS", str(tmp_path / "sim_widget_settings.json"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data sets (../shared/data); the test is skipped, with a reason and a summary line, without them."""
    if not DATA.is_dir():
        pytest.skip(MISSING_DATA)
    return DATA


@pytest.fixture(scope="session")
def three_beam_plane(data_dir):
    """A loader of the real 3-beam set: level 'high' or 'low' → (3, 5, 128, 128) float32 counts.

    The 15 frames of ../shared/data/3beam-microtubules-x2/<level>, binned 2 × 2 back to the native grid (they
    were bicubic-upsampled 2×), arranged angle-major as NOTES.md says; camera background 90 not subtracted.
    """
    import glob

    import numpy as np
    import tifffile

    from napari_sim_ml.engine.io import FrameLayout, arrange_frames

    def load(level: str):
        files = sorted(glob.glob(str(data_dir / f"3beam-microtubules-x2/{level}/{level[0].upper()}E_*.tif")))[:15]
        frames = np.stack([tifffile.imread(f) for f in files]).astype(np.float32)
        native = frames.reshape(15, 128, 2, 128, 2).mean(axis=(2, 4))  # undo the 2× bicubic upsampling
        return arrange_frames(native, FrameLayout(3, 5, 1, "PAZ"))[0, 0]

    return load


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if GUI_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)


def pytest_report_header(config: pytest.Config) -> str:
    if DATA.is_dir():
        return f"real data: {DATA}"
    return f"real data: {DATA} NOT FOUND — the real-data tests will be skipped"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if MISSING_DATA in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("=", f"{len(skipped)} real-data test(s) skipped: {MISSING_DATA.split(' — ')[0]}",
                                   yellow=True, bold=True)
    slow = [r for r in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
            if r.when == "call" and r.duration > UNMARKED_SLOW_S and "slow" not in r.keywords]
    if slow:
        terminalreporter.write_sep("-", f"{len(slow)} test(s) took over {UNMARKED_SLOW_S:g} s but are not marked "
                                        "slow (mark them @pytest.mark.slow)", yellow=True)
        for r in sorted(slow, key=lambda r: -r.duration):
            terminalreporter.write_line(f"  {r.duration:6.1f} s  {r.nodeid}")
