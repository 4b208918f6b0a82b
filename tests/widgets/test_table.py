"""The per-angle table: values per column and the warning colour for low pattern quality."""

from __future__ import annotations

import math

import pytest
from qtpy.QtCore import Qt

from napari_sim_ml._qt._table import WARNING_COLOR, fill_table, make_table, phase_steps_deg
from napari_sim_ml.engine.estimate import AngleDiagnostics, EstimationResult
from napari_sim_ml.engine.parameters import AnglePattern, PatternParameters


def _result(grades):
    angles, diags = [], []
    for i, (grade, quality) in enumerate(grades):
        theta = math.radians(10 + 60 * i)
        angles.append(AnglePattern((4.0 * math.cos(theta), 4.0 * math.sin(theta)), (0.0, 2.1, -2.0), (0.7,)))
        diags.append(AngleDiagnostics(quality, grade, (10.0, 20.0), (0.7,)))
    return EstimationResult(PatternParameters(tuple(angles)), tuple(diags))


def test_table_values_and_warning_colour(qtbot):
    table = make_table()
    qtbot.addWidget(table)
    fill_table(table, _result([("excellent", 95.0), ("low", 11.0), ("inadequate", 5.0)]))
    assert table.rowCount() == 3
    assert [table.verticalHeaderItem(r).text() for r in range(3)] == ["0", "1", "2"]
    assert float(table.item(0, 0).text()) == pytest.approx(10.0)
    assert float(table.item(1, 0).text()) == pytest.approx(70.0)
    assert float(table.item(0, 1).text()) == pytest.approx(250.0)  # 1 / 4 cycles/µm
    assert table.item(0, 2).text() == "0.70"
    assert table.item(0, 3).text() == "120, 125"  # -4.1 rad wraps to 125°
    assert table.item(1, 4).text() == "11"
    assert table.item(0, 4).background().style() == Qt.BrushStyle.NoBrush
    for row in (1, 2):
        for col in range(5):
            assert table.item(row, col).background().color() == WARNING_COLOR
    assert "low" in table.item(1, 4).toolTip()


def test_phase_steps_wrap():
    assert phase_steps_deg((3.0, -2.0, -0.5)) == pytest.approx([(math.degrees(-5.0)) % 360, math.degrees(1.5)])
