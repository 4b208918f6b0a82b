"""Parameters loaded into the dock (issue 10 "Parameters can be typed or loaded") and the
estimate on the mean of a time-lapse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.io import METADATA_KEY
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import Optics, PatternParameters

RAW = "SIM raw 3x3"
PX = 0.08


def _estimate_json(params, optics, path, **edits):
    """A parameters JSON as `napari-sim-ml estimate --json` writes it (README schema + quality)."""
    out = params.to_dict(optics)
    out["quality"] = [{"quality": 40.0, "grade": "excellent", "modulation_measured": list(a.modulation),
                       "margin": 9.0, "note": ""} for a in params.angles]
    for key, value in edits.items():
        out[key] = value
    path.write_text(json.dumps(out))
    return path


@pytest.mark.gui
def test_load_parameters_then_reconstruct(sim_viewer, wait, notes, tmp_path):
    viewer, w = sim_viewer
    truth = PatternParameters.from_dict(viewer.layers[RAW].metadata[METADATA_KEY]["params"])
    optics = Optics(1.4, 525.0, PX)
    good = _estimate_json(truth, optics, tmp_path / "calib.json")

    assert w.load_parameters(good)
    assert w.pattern.params == truth and w.result is None
    assert "loaded calib.json" in w.status.text()
    assert [float(w.table.item(r, 0).text()) for r in range(3)] == pytest.approx(
        [a.angle_deg for a in truth.angles], abs=0.01)
    assert [w.table.item(r, 5).text() for r in range(3)] == ["loaded"] * 3
    assert w.evidence.text().startswith("from calib.json:")
    w.reconstruct()
    wait(w)
    used = PatternParameters.from_dict(viewer.layers[f"{RAW} SIM"].metadata[METADATA_KEY]["params"])
    assert used == truth  # used exactly, no estimation
    assert w.export(tmp_path / "out.tif") is not None  # a loaded pattern can be exported

    # bad files: one sentence, nothing changed
    notes_before = len(notes())
    bad_cases = [
        (_estimate_json(truth, optics, tmp_path / "mod.json",
                        angles=[{**a, "modulation": [50.0]} for a in truth.to_dict()["angles"]]),
         "modulation 50.0 is outside 0-1.2"),
        (_estimate_json(truth, optics, tmp_path / "k.json",
                        angles=[{**a, "k_cycles_per_um": [20.0, 0.0]} for a in truth.to_dict()["angles"]]),
         "beyond the OTF support"),
        (_estimate_json(truth, optics, tmp_path / "two.json", angles=truth.to_dict()["angles"][:2]),
         "describe 2 angles × 3 phases, but the layout is 3 × 3"),
        (tmp_path / "missing.json", "not found"),
    ]
    (tmp_path / "text.json").write_text("{not json")
    bad_cases.append((tmp_path / "text.json", "cannot read parameters JSON"))
    for path, words in bad_cases:
        assert not w.load_parameters(path)
        assert words in w.status.text(), (path.name, w.status.text())
        assert w.status.text().startswith("parameters not loaded: ")
        assert w.pattern.params == truth  # the good one stays
    assert len(notes()) == notes_before + len(bad_cases)

    # optics that differ are said once; k (cycles/µm) is used as it is
    other = _estimate_json(truth, Optics(1.2, 600.0, PX), tmp_path / "other.json")
    assert w.load_parameters(other)
    assert "the file states na 1.2 (the dock has 1.4), wavelength nm 600" in w.status.text()

    # Estimate drops the loaded parameters and estimates on these frames
    w.estimate()
    wait(w)
    assert w.pattern.params is None and w.result is not None
    assert any("dropped" in n for n in notes())


def _time_lapse(n_t: int, photons: float, size: int = 128):
    from napari_sim_ml.engine.simulate import simulate_acquisition

    first = simulate_acquisition("filaments", size=size, photons=photons, seed=3)
    stacks = [first.raw] + [simulate_acquisition("filaments", size=size, photons=photons, params=first.params,
                                                 truth=first.truth, seed=10 + t).raw for t in range(1, n_t)]
    frames = np.stack(stacks).reshape(-1, size, size)  # (T·A·P, Y, X), PAZ with time slowest
    return np.clip(np.rint(frames), 0, 65535).astype(np.uint16), first


@pytest.mark.gui
def test_estimate_on_time_mean(make_napari_viewer_proxy, wait):
    from napari_sim_ml._qt import SimWidget

    n_t = 6
    frames, sim = _time_lapse(n_t, photons=6.0)  # one time point is refused, their mean is graded good
    viewer = make_napari_viewer_proxy()
    viewer.add_image(frames, name="lapse", scale=(1.0, PX, PX), metadata={METADATA_KEY: {
        "optics": {"na": 1.4, "wavelength_nm": 525.0, "pixel_size_um": PX}, "camera_offset": sim.offset,
        "layout": {"n_angles": 3, "n_phases": 3, "n_z": 1, "order": "PAZ"}}})
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    c = w.controls
    assert c.time_mean.native.isVisibleTo(w)  # 54 frames = 6 time points of 3 × 3
    w.estimate()
    wait(w)
    assert w.result is None and w.status.text().startswith("estimate failed: no illumination pattern")
    c.time_mean.value = True
    w.estimate()
    wait(w)
    assert w.result is not None, w.status.text()
    planes = frames.reshape(n_t, 3, 3, *frames.shape[-2:]).astype(np.float64)
    mean = planes.mean(axis=0).astype(np.float32)
    direct = estimate_pattern(mean, sim.optics, otf=ideal_otf(sim.optics), background=sim.offset)
    assert w.result.params == direct.params  # the dock estimated on the time mean
    assert all(d.grade in ("good", "excellent") for d in w.result.diagnostics)
    for a in w.result.params.angles:
        true = min(sim.params.angles, key=lambda t: abs(t.angle_deg - a.angle_deg))
        assert abs(a.k_magnitude - true.k_magnitude) < 0.005 * true.k_magnitude
    # the option only shows for a time-lapse: 9 frames of 3 × 3 have one time point
    viewer.add_image(frames[:9], name="one", scale=(1.0, PX, PX))
    w.select_layer("one")
    assert not c.time_mean.native.isVisibleTo(w) and c.time_mean.value is False


def _wrapped(a, b):
    return abs((a - b + np.pi) % (2 * np.pi) - np.pi)


@pytest.mark.gui
def test_keep_k_refit_phases(make_napari_viewer_proxy, wait, notes, tmp_path):
    """A bright calibration's k reused on other data whose phases moved: the phases are refitted."""
    from dataclasses import replace

    from napari_sim_ml._qt import SimWidget
    from napari_sim_ml.engine.simulate import simulate_acquisition

    bright = simulate_acquisition("filaments", size=128, photons=1000.0, seed=5)
    moved = PatternParameters(tuple(replace(a, phases_rad=tuple(p + 0.8 for p in a.phases_rad))
                                    for a in bright.params.angles))
    dim = simulate_acquisition("filaments", size=128, photons=100.0, params=moved, seed=6)
    calib = _estimate_json(estimate_pattern(bright.raw, bright.optics, background=bright.offset).params,
                           bright.optics, tmp_path / "bright.json")
    viewer = make_napari_viewer_proxy()
    frames = np.clip(np.rint(dim.raw), 0, 65535).astype(np.uint16).reshape(-1, 128, 128)
    viewer.add_image(frames, name="dim", scale=(1.0, PX, PX), metadata={METADATA_KEY: {
        "optics": {"na": 1.4, "wavelength_nm": 525.0, "pixel_size_um": PX}, "camera_offset": dim.offset,
        "layout": {"n_angles": 3, "n_phases": 3, "n_z": 1, "order": "PAZ"}}})
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    c = w.controls
    assert not c.keep_k.enabled  # nothing loaded yet
    assert w.load_parameters(calib) and c.keep_k.enabled
    loaded = w.pattern.params
    c.keep_k.value = True
    w.estimate()
    wait(w)
    assert w.result is not None, w.status.text()
    assert w.pattern.params == loaded  # a refit keeps the calibration
    assert w.status.text().startswith("k kept from bright.json, phases and modulation refitted; pattern quality")
    assert "none: k was given, not searched" in w.evidence.text()
    for got, cal in zip(w.result.params.angles, loaded.angles, strict=True):
        assert got.k_cycles_per_um == pytest.approx(cal.k_cycles_per_um, rel=1e-12)  # k kept exactly
        true = min(moved.angles, key=lambda t: abs(t.angle_deg - got.angle_deg))
        sign = 1.0 if np.dot(true.k_cycles_per_um, got.k_cycles_per_um) > 0 else -1.0
        refit_err = max(_wrapped(sign * g, t) for g, t in zip(got.phases_rad, true.phases_rad, strict=True))
        stale_err = max(_wrapped(sign * g, t) for g, t in zip(cal.phases_rad, true.phases_rad, strict=True))
        assert refit_err < 0.2 < 0.6 < stale_err, (refit_err, stale_err)
    # Reconstruct with keep k and no estimate of these inputs: the worker refits, then reconstructs
    c.keep_k.value = False
    c.keep_k.value = True  # invalidates the refit above
    assert w.result is None
    w.reconstruct()
    wait(w)
    used = PatternParameters.from_dict(viewer.layers["dim SIM"].metadata[METADATA_KEY]["params"])
    assert np.allclose([a.k_cycles_per_um for a in used.angles], [a.k_cycles_per_um for a in loaded.angles],
                       rtol=1e-12, atol=0)
    assert used != loaded  # the phases are the refitted ones
