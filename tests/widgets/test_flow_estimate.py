"""Sample → prefilled fields → Estimate: k against the simulation's truth, the table, the spectra."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_sim_ml.engine.parameters import PatternParameters

pytestmark = pytest.mark.gui
RAW = "SIM raw 3x3"
PX = 0.08


def _by_angle(params):
    return sorted(params.angles, key=lambda a: a.angle_deg)


def test_fields_are_prefilled_from_the_layer_metadata(sim_viewer):
    _, w = sim_viewer
    c = w.controls
    assert c.layer.value == RAW
    assert (c.na.value, c.wavelength_nm.value, c.pixel_size_um.value) == pytest.approx((1.4, 525.0, PX))
    assert c.background.value == pytest.approx(100.0)
    assert (c.angles.value, c.phases.value, c.n_z.value, c.order.value) == (3, 3, 1, "PAZ")
    assert w.session.source == RAW and w.session.optics.pixel_size_um == pytest.approx(PX)


def test_estimate_finds_k_and_fills_the_table_and_the_spectra(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    truth = PatternParameters.from_dict(viewer.layers[RAW].metadata["napari_sim_ml"]["params"])
    w.estimate()
    wait(w)
    assert not notes(), notes()
    for est, true in zip(_by_angle(w.result.params), _by_angle(truth), strict=True):  # k within 0.5 %
        assert np.hypot(*np.subtract(est.k_cycles_per_um, true.k_cycles_per_um)) < 0.005 * true.k_magnitude
    assert w.table.rowCount() == 3
    shown = sorted(float(w.table.item(r, 0).text()) for r in range(3))
    assert shown == pytest.approx(sorted(a.angle_deg for a in truth.angles), abs=0.1)
    periods = [float(w.table.item(r, 1).text()) for r in range(3)]
    assert periods == pytest.approx([a.period_um * 1e3 for a in w.result.params.angles], abs=0.1)
    assert all(w.table.item(r, 0).background().style() == Qt.BrushStyle.NoBrush for r in range(3))  # no warning
    spectra = w.spectra.model.layers  # in their own canvas, in cycles/µm
    assert spectra[f"{RAW} spectrum raw"].data.shape == (256, 256)
    peaks = spectra[f"{RAW} peaks"].data
    assert peaks.shape == (6, 2)
    for a in truth.angles:  # each true ±k has a marker within half a Fourier pixel
        k_px = np.array([a.k_cycles_per_um[1], a.k_cycles_per_um[0]]) * 256 * PX
        for sign in (1, -1):
            assert np.min(np.hypot(*(peaks - (128 + sign * k_px)).T)) < 0.5
    assert len(spectra[f"{RAW} OTF support"].data) == 7  # around DC and every ±k


def test_a_changed_field_drops_the_estimate_and_empties_the_table(sim_viewer, wait):
    _, w = sim_viewer
    w.estimate()
    wait(w)
    assert w.session.params is not None and w.table.rowCount() == 3
    w.controls.na.value = 1.3
    assert w.result is None and w.session.params is None and w.table.rowCount() == 0
    assert w.session.optics.na == pytest.approx(1.3)
