"""Issue 11 item 22: the sequence that segfaulted napari in a GL draw under Xvfb (OMX stack) runs through.

On the base of this branch (a5ca10d) it segfaults deterministically in the second round (glDrawArrays of an
Image visual, exit -11), also with only the Points ('peaks') or only the Shapes ('OTF support') layer that the
estimate removed and re-added in the main canvas; with the spectra, peaks and OTF supports in their own canvas
it does not. Every texture upload is on the main thread and C-contiguous."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.gui
@pytest.mark.slow
def test_item22_sequence_does_not_crash(data_dir):
    omx = data_dir / "omx-3d-sim-64px" / "raw.tif"
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs a display (Xvfb, started by pytest-xvfb)")
    script = Path(__file__).with_name("_gl_sequence.py")
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, str(script), str(omx), "2"], capture_output=True, text=True,
                          timeout=600, env=env)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    assert "done" in proc.stdout and "round 1" in proc.stdout, tail
    assert "off-main or non-contiguous 0" in proc.stdout, tail
