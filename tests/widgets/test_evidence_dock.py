"""The dock shows the estimator's evidence (issue 10): k in cycles/µm and Fourier px, absolute
phases, m1/m2, the margin over the runner-up, the runner-up peak on the spectrum, and a grade that
says which angle is doubtful and why.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_sim_ml._qt._table import WARNING_COLOR
from napari_sim_ml._qt.evidence import angle_evidence, evidence_text, grade_summary, runner_up_points
from napari_sim_ml.engine.candidates import Candidate
from napari_sim_ml.engine.estimate import AngleDiagnostics, EstimationResult
from napari_sim_ml.engine.parameters import AnglePattern, PatternParameters

RAW2 = "SIM raw 3x3"


def _three_beam(note: str = "", margin: float = 9.0) -> EstimationResult:
    k = 2.0  # cycles/µm
    angle = AnglePattern((k, 0.0), (0.1, 1.3, 2.5, -2.6, -1.4), (0.8, 0.4))
    cands = (Candidate((0.0, 64.0), 40.0, 0.95, 0.9), Candidate((3.0, 40.0), 30.0, 0.9, 0.2))
    diag = AngleDiagnostics(50.0, "low" if note else "excellent", (0.0, 64.0), (0.8, 0.4), margin=margin,
                            note=note, candidates=cands, chosen=0)
    return EstimationResult(PatternParameters((angle,)), (diag,))


def test_evidence_values_plain():
    result = _three_beam()
    (e,) = angle_evidence(result, 0.1, (256, 128))
    assert e.k_px == pytest.approx((0.0, 2.0 * 128 * 0.1))  # k · N · dx
    assert e.phases_deg == pytest.approx(tuple(math.degrees(p) for p in (0.1, 1.3, 2.5, -2.6, -1.4)))
    assert e.runner_up_px == (3.0, 40.0) and not e.doubtful
    text = evidence_text(result, 0.1, (256, 128))
    assert "|k| 2.0000 cycles/µm" in text and "kx 25.60) Fourier px" in text
    assert "m1 0.80, m2 0.40" in text and "9× over the runner-up" in text
    assert "5.7, 74.5, 143.2, -149.0, -80.2°" in text  # every frame's absolute phase
    # runner-up: ± each order (top order at the candidate, first order at half of it)
    pts = runner_up_points(result, (256, 128))
    assert pts.tolist() == [[129.5, 84.0], [126.5, 44.0], [131.0, 104.0], [125.0, 24.0]]
    doubtful = _three_beam(margin=1.3)
    summary, warn = grade_summary(doubtful)
    assert warn and "angle 0: the runner-up peak is nearly as likely (margin 1.30" in summary
    summary, warn = grade_summary(_three_beam(note="|k| differs from the other angles by 8 %"))
    assert warn and summary == "pattern quality: low — angle 0: |k| differs from the other angles by 8 %"


@pytest.mark.gui
def test_dock_shows_evidence_and_runner_up(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    assert not notes(), notes()
    result = w.result
    shape = viewer.layers[RAW2].data.shape[-2:]
    text = w.evidence.text()
    for i, a in enumerate(result.params.angles):
        line = text.splitlines()[i]
        kx, ky = a.k_cycles_per_um
        assert f"|k| {a.k_magnitude:.4f} cycles/µm" in line
        assert f"kx {kx * shape[1] * 0.08:.2f}) Fourier px" in line
        phases = re.search(r"phases ([^°]+)°", line).group(1).split(", ")
        assert [float(p) for p in phases] == pytest.approx([math.degrees(p) for p in a.phases_rad], abs=0.06)
        assert f"m1 {a.modulation[0]:.2f}" in line and "m2" not in line
    assert w.table.horizontalHeaderItem(2).text() == "m1"
    assert [w.table.item(r, 5).text() for r in range(3)] == [d.grade for d in result.diagnostics]
    # the runner-up peaks: their own layer, another colour and symbol than the chosen peaks
    runners = [d.runner_up_px for d in result.diagnostics if d.runner_up_px is not None]
    assert runners, "the sample's estimate kept no second candidate"
    layer = w.spectra.model.layers[f"{RAW2} runner-up peaks"]  # in the spectra canvas
    assert len(layer.data) == 2 * len(runners)
    chosen = w.spectra.model.layers[f"{RAW2} peaks"]
    assert layer.symbol[0] != chosen.symbol[0]
    assert not np.allclose(layer.border_color[0], chosen.border_color[0])
    for ry, rx in runners:
        assert np.min(np.hypot(*(layer.data - (np.array(shape) // 2 + (ry, rx))).T)) < 1e-6
    assert w.status.text().startswith("pattern quality: ")

    # a doubtful angle (engine graded it 'low' for its note): coloured row, status says which and why
    diags = list(result.diagnostics)
    diags[1] = replace(diags[1], grade="low", note="its |k| differs from the other angles' by 7 %")
    w._on_estimated(replace(w.estimate_output, result=replace(result, diagnostics=tuple(diags))), w.job)
    assert "angle 1: its |k| differs from the other angles' by 7 %" in w.status.text()
    assert w.table.item(1, 5).text() == "low"
    assert w.table.item(1, 0).background().color() == WARNING_COLOR
    assert w.table.item(0, 0).background().style() == Qt.BrushStyle.NoBrush
    assert "⚠ its |k| differs" in w.evidence.text().splitlines()[1]
    assert any("doubtful pattern in at least one angle" in n for n in notes())


@pytest.mark.gui
def test_three_beam_labels_m1_m2(make_napari_viewer_proxy, wait):
    from napari_sim_ml._qt import SimWidget

    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-sim-ml", "sim-3beam")
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.estimate()
    wait(w)
    assert w.result.params.n_orders == 2
    assert w.table.horizontalHeaderItem(2).text() == "m1 / m2"
    for line, a in zip(w.evidence.text().splitlines(), w.result.params.angles, strict=True):
        assert f"m1 {a.modulation[0]:.2f}, m2 {a.modulation[1]:.2f}" in line
        assert len(re.search(r"phases ([^°]+)°", line).group(1).split(", ")) == 5
