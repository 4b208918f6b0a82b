"""Export through the plugin's writer: read back, open in napari, ask before overwriting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_sim_ml.engine.io import read_raw
from napari_sim_ml.engine.parameters import PatternParameters

pytestmark = pytest.mark.gui
RAW = "SIM raw 3x3"
PX = 0.08


def test_export_reads_back_and_asks_before_overwriting(sim_viewer, wait, notes, tmp_path):
    import numpy as np

    viewer, w = sim_viewer
    assert w.export(tmp_path / "early.tif") is None and any("reconstruct first" in m for m in notes())
    w.reconstruct()
    wait(w)
    w.controls.wiener.value = 0.5
    wait(w)
    sr = viewer.layers[f"{RAW} SIM"]
    paths = w.export(tmp_path / "result.tif")
    assert paths is not None, notes()
    back = read_raw(paths[0], require_frames=False)
    assert back.pixel_size_um == pytest.approx(PX / 2) and back.frames.shape == (512, 512)
    np.testing.assert_allclose(back.frames, sr.data, rtol=1e-6)
    stored = PatternParameters.from_dict(back.extra["params"])
    assert stored.angles[0].k_cycles_per_um == pytest.approx(w.result.params.angles[0].k_cycles_per_um)
    assert back.extra["filter"]["wiener"] == pytest.approx(0.5, rel=0.01)
    wf_back = read_raw(paths[1], require_frames=False)
    assert wf_back.pixel_size_um == pytest.approx(PX / 2) and wf_back.extra["kind"] == "widefield"
    params = json.loads(Path(paths[2]).read_text())
    assert params["pixel_size_um"] == pytest.approx(PX) and len(params["angles"]) == 3
    opened = viewer.open(paths[0], plugin="napari-sim-ml")[0]
    assert tuple(opened.scale) == pytest.approx((PX / 2, PX / 2))

    asked = []
    w._confirm_overwrite = lambda existing: asked.append(existing) or False
    mtime = (tmp_path / "result.tif").stat().st_mtime_ns
    assert w.export(tmp_path / "result.tif") is None
    assert len(asked[0]) == 3 and (tmp_path / "result.tif").stat().st_mtime_ns == mtime
    assert any("cancelled" in m for m in notes())
    w._confirm_overwrite = lambda existing: True
    assert w.export(tmp_path / "result.tif") is not None
