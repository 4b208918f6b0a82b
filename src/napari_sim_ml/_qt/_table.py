"""The per-angle parameter table shown after an estimation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("angle (°)", "period (nm)", "modulation", "steps (°)", "quality")


def _quality_tooltip() -> str:
    """Word the grade thresholds as the estimator applies them (engine.estimate.QUALITY_GRADES)."""
    from ..engine.estimate import QUALITY_GRADES

    (a, g0), (b, g1), (c, g2) = QUALITY_GRADES
    return (f"pattern quality (correlation peak / background): < {a:g} {g0}, {a:g}-{b:g} {g1}, "
            f"{b:g}-{c:g} {g2}, > {c:g} excellent")


TOOLTIPS = ("direction of the pattern wave vector k (x right, y down)", "period of the first-order stripes",
            "modulation depth per order (m1 / m2)", "phase steps between consecutive frames",
            _quality_tooltip())
WARN_GRADES = ("inadequate", "low")
WARNING_COLOR = QColor(217, 130, 43)  # orange: readable on napari's dark and light themes


def make_table() -> QTableWidget:
    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels(list(COLUMNS))
    for column, tip in enumerate(TOOLTIPS):
        item = table.horizontalHeaderItem(column)
        if item is not None:
            item.setToolTip(tip)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    vertical, horizontal = table.verticalHeader(), table.horizontalHeader()
    assert vertical is not None and horizontal is not None  # a QTableWidget always has both
    vertical.setVisible(True)
    horizontal.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    _fit_height(table)
    return table


def _fit_height(table: QTableWidget) -> None:
    """Tall enough for every row (at least 3), no empty space below."""
    rows = max(table.rowCount(), 3)
    horizontal, vertical = table.horizontalHeader(), table.verticalHeader()
    assert horizontal is not None and vertical is not None
    height = horizontal.sizeHint().height() + rows * vertical.defaultSectionSize()
    table.setFixedHeight(height + 2 * table.frameWidth() + 2)


def phase_steps_deg(phases: tuple[float, ...]) -> list[float]:
    """Consecutive phase steps in degrees, each wrapped to [0, 360)."""
    steps = np.diff(np.asarray(phases, dtype=float))
    return [math.degrees(s) % 360.0 for s in steps]


def table_rows(result: Any) -> list[tuple[list[str], bool]]:
    """(cell texts, warn) per angle of an EstimationResult."""
    rows = []
    for pattern, diag in zip(result.params.angles, result.diagnostics, strict=False):
        cells = [
            f"{pattern.angle_deg:.2f}",
            f"{pattern.period_um * 1e3:.1f}",
            " / ".join(f"{m:.2f}" for m in pattern.modulation),
            ", ".join(f"{s:.0f}" for s in phase_steps_deg(pattern.phases_rad)),
            f"{diag.quality:.0f}",
        ]
        rows.append((cells, diag.grade in WARN_GRADES))
    return rows


def fill_table(table: QTableWidget, result: Any) -> None:
    """One row per angle; rows whose pattern quality is too low get the warning colour."""
    rows = table_rows(result)
    table.setRowCount(len(rows))
    table.setVerticalHeaderLabels([str(i) for i in range(len(rows))])  # angle index, as in messages
    for r, (cells, warn) in enumerate(rows):
        grade = result.diagnostics[r].grade
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
            item.setToolTip(f"angle {r}: pattern quality {grade}")
            if warn:
                item.setBackground(QBrush(WARNING_COLOR))
                item.setForeground(QBrush(QColor("black")))
                item.setToolTip("pattern quality is low: the reconstruction of this angle may show artefacts")
            table.setItem(r, c, item)
    _fit_height(table)
