"""The per-angle parameter table shown after an estimation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QPlainTextEdit, QTableWidget, QTableWidgetItem

from .evidence import NOT_ESTIMATED, angle_evidence, evidence_text
from .typed import EDITABLE_COLUMNS

COLUMNS = ("angle (°)", "period (nm)", "modulation", "steps (°)", "quality", "grade", "margin")


def _quality_tooltip() -> str:
    """Describe the grade thresholds as the estimator applies them (engine.estimate.QUALITY_GRADES)."""
    from ..engine.estimate import QUALITY_GRADES

    (a, g0), (b, g1), (c, g2) = QUALITY_GRADES
    return (f"pattern quality (correlation peak / background): < {a:g} {g0}, {a:g}-{b:g} {g1}, "
            f"{b:g}-{c:g} {g2}, > {c:g} excellent")


TOOLTIPS = ("direction of the pattern wave vector k (x right, y down)", "period of the first-order stripes",
            "modulation depth per order (m1 / m2)", "phase steps between consecutive frames",
            _quality_tooltip(), "the grade: at most 'low' when the angle disagrees with the others or its "
            "peak barely beats the runner-up",
            "likelihood of the chosen peak over the runner-up (the runner-up is drawn as a magenta × on the "
            "raw spectrum)")
WARNING_COLOR = QColor(217, 130, 43)  # orange: readable on napari's dark and light themes


def make_table() -> QTableWidget:
    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels(list(COLUMNS))
    for column, tip in enumerate(TOOLTIPS):
        item = table.horizontalHeaderItem(column)
        if item is not None:
            item.setToolTip(tip)
    table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
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
    """(cell texts, warn) per angle of an EstimationResult (loaded parameters: no diagnostics).

    warn: the grade is low or inadequate (the estimator grades an inconsistent angle, or one
    whose margin over the runner-up is too small, at most 'low'), or a note or small margin says so.
    """
    rows = []
    for pattern, e in zip(result.params.angles, angle_evidence(result, 1.0, (1, 1)), strict=False):
        loaded = e.grade in NOT_ESTIMATED
        cells = [
            f"{pattern.angle_deg:.2f}",
            f"{pattern.period_um * 1e3:.1f}",
            " / ".join(f"{m:.2f}" for m in pattern.modulation),
            ", ".join(f"{s:.0f}" for s in phase_steps_deg(pattern.phases_rad)),
            "—" if loaded else f"{e.quality:.0f}",
            e.grade,
            "—" if loaded or not math.isfinite(e.margin) else f"{e.margin:.3g}",
        ]
        rows.append((cells, e.doubtful and not loaded))
    return rows


def fill_table(table: QTableWidget, result: Any) -> None:
    """One row per angle; rows whose pattern quality is too low get the warning colour."""
    table.blockSignals(True)  # itemChanged means a typed value, not a fill
    try:
        _fill(table, result)
    finally:
        table.blockSignals(False)
    _fit_height(table)


def _fill(table: QTableWidget, result: Any) -> None:
    rows = table_rows(result)
    evidence = angle_evidence(result, 1.0, (1, 1))
    table.setRowCount(len(rows))
    table.setVerticalHeaderLabels([str(i) for i in range(len(rows))])  # angle index, as in messages
    n_orders = result.params.n_orders
    header = table.horizontalHeaderItem(2)
    if header is not None:
        header.setText("m1 / m2" if n_orders == 2 else "m1")  # 3-beam has two orders
        header.setToolTip("modulation depth per order: " + ("m1 (first order) / m2 (second order)"
                                                            if n_orders == 2 else "m1 (2-beam: one order)"))
    for r, (cells, warn) in enumerate(rows):
        e = evidence[r]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
            item.setToolTip(f"angle {r}: pattern quality {e.grade}")
            if c in EDITABLE_COLUMNS:
                item.setToolTip(f"angle {r}: pattern quality {e.grade}; double-click to type a value")
            else:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            if warn:
                item.setBackground(QBrush(WARNING_COLOR))
                item.setForeground(QBrush(QColor("black")))
                item.setToolTip(f"angle {r}: pattern quality is low ({e.reason()}): the reconstruction of this "
                                "angle may show artefacts")
            table.setItem(r, c, item)


class EvidenceBox(QPlainTextEdit):
    """Read-only text box with QLabel-like ``text()`` / ``setText()``."""

    def text(self) -> str:
        """Return the shown text."""
        return self.toPlainText()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        """Replace the shown text."""
        self.setPlainText(text)


def make_evidence_label() -> EvidenceBox:
    """Make the per-angle evidence box below the table: wrapped, selectable, scrolls instead of cutting off."""
    box = EvidenceBox()
    box.setReadOnly(True)
    box.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    box.setFixedHeight(7 * box.fontMetrics().lineSpacing())
    box.setToolTip("per angle: k in cycles/µm and in Fourier pixels of the raw frames (from the spectrum's "
                   "centre), the absolute phase of every frame, the modulation per order, the quality and the "
                   "margin over the runner-up peak")
    return box


def show_evidence(box: Any, result: Any, pixel_size_um: float, shape: tuple[int, ...]) -> None:
    """Fill the evidence box from an EstimationResult (raw frames of ``shape`` (Y, X))."""
    box.setText(evidence_text(result, pixel_size_um, (int(shape[-2]), int(shape[-1]))))
