"""Issue 10 "Parameters can be typed": values typed into the table are checked (physical
ranges), refused in one sentence, and used by Reconstruct."""

from __future__ import annotations

import math

import pytest
from qtpy.QtCore import Qt

from napari_sim_ml._qt.typed import edit_parameters
from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.io import METADATA_KEY
from napari_sim_ml.engine.parameters import AnglePattern, Optics, PatternParameters

RAW = "SIM raw 3x3"
OPTICS = Optics(1.4, 525.0, 0.08)


def _params():
    return PatternParameters((AnglePattern((4.0, 0.0), (0.0, 2.0, 4.0), (0.7,)),))


def test_edit_parameters_plain():
    p = edit_parameters(_params(), 0, 0, "90", OPTICS)
    assert p.angles[0].k_cycles_per_um == pytest.approx((0.0, 4.0), abs=1e-12)
    p = edit_parameters(_params(), 0, 1, "200", OPTICS)  # nm
    assert p.angles[0].k_magnitude == pytest.approx(5.0)
    p = edit_parameters(_params(), 0, 3, "120, 120", OPTICS)
    assert [math.degrees(v) for v in p.angles[0].phases_rad] == pytest.approx([0.0, 120.0, -120.0])
    for column, text, words in [(2, "50", "modulation 50.0 is outside 0-1.2"), (2, "-1", "outside 0-1.2"),
                                (1, "50", "beyond the OTF support"), (1, "0", "must be positive"),
                                (0, "abc", "must be numbers, not 'abc'"), (2, "0.5 0.4", "needs 1 value, not 2"),
                                (1, "nan", "finite numbers")]:
        with pytest.raises(SimInputError, match=words):
            edit_parameters(_params(), 0, column, text, OPTICS)


@pytest.mark.gui
def test_typed_values_checked_and_used(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    w.estimate()
    wait(w)
    before = w.result.params
    cell = w.table.item(1, 1)
    editable = Qt.ItemFlag.ItemIsEditable
    assert cell.flags() & editable and not w.table.item(1, 4).flags() & editable  # quality is not typed
    cell.setText("300")  # a typed period (nm)
    assert w.result.params.angles[1].period_um == pytest.approx(0.3)
    assert w.result.params.angles[0] == before.angles[0]
    assert w.table.item(1, 5).text() == "typed" and "typed, not estimated" in w.evidence.text().splitlines()[1]
    assert w.status.text() == "angle 1: the typed value is used from the next Reconstruct"
    n = len(notes())
    w.table.item(0, 2).setText("50")
    assert w.status.text() == "angle 0 not changed: the typed value: angle 0: modulation 50.0 is outside 0-1.2"
    assert w.table.item(0, 2).text() == f"{before.angles[0].modulation[0]:.2f}"  # put back
    assert len(notes()) == n + 1
    w.table.item(2, 0).setText("ninety")
    assert "must be numbers, not 'ninety'" in w.status.text()
    w.reconstruct()
    wait(w)
    used = PatternParameters.from_dict(viewer.layers[f"{RAW} SIM"].metadata[METADATA_KEY]["params"])
    assert used.angles[1].period_um == pytest.approx(0.3) and used.angles[0] == before.angles[0]
