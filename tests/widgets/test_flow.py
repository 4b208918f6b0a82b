"""End to end in a real viewer: sample → estimate → reconstruct → every slider → export → read back."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_sim_ml.engine.io import read_raw
from napari_sim_ml.engine.parameters import PatternParameters
from napari_sim_ml.engine.wiener import log_spectrum, wiener_filter

from .conftest import correlation_shift

RAW = "SIM raw 3x3"
PX = 0.08


def _by_angle(params):
    return sorted(params.angles, key=lambda a: a.angle_deg)


def test_sample_estimate_reconstruct_sliders_export(sim_viewer, wait, notes, tmp_path):
    viewer, w = sim_viewer
    raw = viewer.layers[RAW]
    truth = PatternParameters.from_dict(raw.metadata["napari_sim_ml"]["params"])
    c = w.controls
    global_state = (tuple(viewer.dims.axis_labels), viewer.scale_bar.visible, viewer.theme)
    # prefilled from the layer's metadata
    assert c.layer.value == RAW
    assert (c.na.value, c.wavelength_nm.value, c.pixel_size_um.value) == pytest.approx((1.4, 525.0, PX))
    assert c.background.value == pytest.approx(100.0)
    assert (c.angles.value, c.phases.value, c.n_z.value, c.order.value) == (3, 3, 1, "PAZ")

    # ---- estimate: k within 0.5 % of the simulation's truth; table and spectrum layers
    w.estimate()
    wait(w)
    assert not notes(), notes()
    for est, true in zip(_by_angle(w.result.params), _by_angle(truth), strict=False):
        dk = np.hypot(*np.subtract(est.k_cycles_per_um, true.k_cycles_per_um))
        assert dk < 0.005 * true.k_magnitude
    assert w.table.rowCount() == 3
    shown = sorted(float(w.table.item(r, 0).text()) for r in range(3))
    assert shown == pytest.approx(sorted(a.angle_deg for a in truth.angles), abs=0.1)
    periods = [float(w.table.item(r, 1).text()) for r in range(3)]
    assert periods == pytest.approx([a.period_um * 1e3 for a in w.result.params.angles], abs=0.1)
    assert all(w.table.item(r, 0).background().style() == Qt.BrushStyle.NoBrush for r in range(3))  # no warning
    spectra = w.spectra.model.layers  # in their own canvas, in cycles/µm
    spectrum = spectra[f"{RAW} spectrum raw"]
    assert spectrum.data.shape == (256, 256)
    peaks = spectra[f"{RAW} peaks"].data
    assert peaks.shape == (6, 2)
    for a in truth.angles:  # each true ±k has a marker within half a Fourier pixel
        k_px = np.array([a.k_cycles_per_um[1], a.k_cycles_per_um[0]]) * 256 * PX
        for sign in (1, -1):
            assert np.min(np.hypot(*(peaks - (128 + sign * k_px)).T)) < 0.5
    assert len(spectra[f"{RAW} OTF support"].data) == 7  # around DC and every ±k

    # ---- reconstruct: widefield + SIM on the 2x grid, overlaying the raw layer exactly
    w.reconstruct()
    wait(w)
    assert not notes(), notes()
    sr, wf = viewer.layers[f"{RAW} SIM"], viewer.layers[f"{RAW} widefield"]
    assert sr.data.shape == wf.data.shape == (512, 512)
    status = w.status.text()  # the truth-free figures of the result, and no warning on a clean sample
    assert "pattern imprint" in status and "border cross" in status and "do not trust" not in status
    for layer in (sr, wf):
        assert tuple(layer.scale) == pytest.approx((PX / 2, PX / 2))
        assert tuple(layer.translate) == (0.0, 0.0)
        assert [str(u) for u in layer.units] == ["micrometer", "micrometer"]
    # raw pixel (i, j) and fine pixel (2i, 2j) are the same world point
    assert raw.data_to_world((0, 37, 91))[-2:] == pytest.approx(sr.data_to_world((74, 182)))
    # numerically: the widefield at even pixels is the background-free raw mean, unshifted,
    raw_mean = raw.data.astype(np.float64).mean(axis=0) - 100.0
    assert np.abs(correlation_shift(raw_mean[32:-32, 32:-32], wf.data[::2, ::2][32:-32, 32:-32])).max() < 0.05
    # and the SIM image registers on the simulation's truth (same 2x grid) within 0.1 fine px
    truth_img = viewer.layers["SIM truth 3x3"]
    assert tuple(truth_img.scale) == pytest.approx(tuple(sr.scale))
    inner = (slice(48, -48), slice(48, -48))
    assert np.abs(correlation_shift(truth_img.data[inner], sr.data[inner])).max() < 0.1
    # and resolves more than the widefield: higher correlation with the truth
    def corr(a):
        return np.corrcoef(a[inner].ravel(), truth_img.data[inner].ravel())[0, 1]
    assert corr(sr.data) > corr(wf.data) + 0.05
    assert sr.metadata["napari_sim_ml"]["params"]["angles"][0]["k_cycles_per_um"] == pytest.approx(
        list(w.result.params.angles[0].k_cycles_per_um))

    # ---- every slider updates the same layer in place, exactly as the engine filters
    n_layers = len(viewer.layers)
    moves = {"wiener": 0.5, "apo_cutoff": 1.6, "apo_bend": 0.4, "attenuation": 0.3, "attenuation_fwhm": 2.5}
    for name, value in moves.items():
        before = np.array(sr.data)
        getattr(c, name).value = value
        wait(w)  # inline on an idle machine; in a worker when the filter is slow
        after = np.asarray(sr.data)
        assert len(viewer.layers) == n_layers and viewer.layers[f"{RAW} SIM"] == sr
        assert np.abs(after - before).mean() > 1e-3 * np.abs(before).mean(), name
        expected = wiener_filter(w.prepared, c.filter_settings())
        np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-4)
        assert sr.metadata["napari_sim_ml"]["filter"][name] == pytest.approx(value, rel=0.01)
    # the settings the sliders now give are the values moved to (log slider: within 1 %)
    got = asdict(c.filter_settings())
    assert {k: got[k] for k in moves} == pytest.approx(moves, rel=0.01)
    # a larger Wiener parameter smooths: less high-frequency energy
    c.wiener.value = 0.005
    wait(w)
    rough = np.abs(np.diff(np.asarray(sr.data), axis=1)).mean()
    c.wiener.value = 0.5
    wait(w)
    smooth = np.abs(np.diff(np.asarray(sr.data), axis=1)).mean()
    assert smooth < 0.8 * rough
    wait(w)  # the spectrum follows in a latest-value-wins worker
    np.testing.assert_allclose(spectra[f"{RAW} SIM spectrum"].data, log_spectrum(sr.data), rtol=1e-4)

    # ---- export through the writer, read back
    paths = w.export(tmp_path / "result.tif")
    assert paths is not None, notes()
    back = read_raw(paths[0], require_frames=False)
    assert back.pixel_size_um == pytest.approx(PX / 2)
    assert back.frames.shape == (512, 512)
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

    # ---- asks before overwriting
    asked = []
    w._confirm_overwrite = lambda existing: asked.append(existing) or False
    mtime = (tmp_path / "result.tif").stat().st_mtime_ns
    assert w.export(tmp_path / "result.tif") is None
    assert len(asked[0]) == 3 and (tmp_path / "result.tif").stat().st_mtime_ns == mtime
    assert any("cancelled" in m for m in notes())
    w._confirm_overwrite = lambda existing: True
    assert w.export(tmp_path / "result.tif") is not None
    # other panels (the learned reconstruction) read the same inputs
    job, params, base = w.context()
    assert base == RAW and params == w.result.params and job.frames.shape == (9, 256, 256)
    # the plugin never changes global viewer state
    assert (tuple(viewer.dims.axis_labels), viewer.scale_bar.visible, viewer.theme) == global_state


def test_slow_filter_moves_to_a_latest_value_wins_worker(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    w.reconstruct()
    wait(w)
    sr = viewer.layers[f"{RAW} SIM"]
    w.inline_filter_ms = 0.0  # as if the filter were slow: every move goes to the worker
    w.filter_cost_ms = 1.0
    n_layers = len(viewer.layers)
    for value in np.geomspace(0.01, 0.4, 12):  # a fast drag
        w.controls.wiener.value = float(value)
    assert w.busy
    wait(w)
    np.testing.assert_allclose(sr.data, wiener_filter(w.prepared, w.controls.filter_settings()), atol=1e-4)
    assert sr.metadata["napari_sim_ml"]["filter"]["wiener"] == pytest.approx(0.4, rel=0.01)
    assert len(viewer.layers) == n_layers and not notes()
    w.inline_filter_ms = 1e9  # back to inline: the update is there as soon as the move returns
    w.controls.apo_bend.value = 1.5
    np.testing.assert_allclose(sr.data, wiener_filter(w.prepared, w.controls.filter_settings()), atol=1e-4)
    wait(w)
