"""The live sliders: every one re-filters the cached bands and updates the SIM layer in place."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from napari_sim_ml.engine.wiener import log_spectrum, wiener_filter

pytestmark = pytest.mark.gui
RAW = "SIM raw 3x3"
MOVES = {"wiener": 0.5, "apo_cutoff": 1.6, "apo_bend": 0.4, "attenuation": 0.3, "attenuation_fwhm": 2.5}


@pytest.fixture
def reconstructed(sim_viewer, wait):
    viewer, w = sim_viewer
    w.reconstruct()
    wait(w)
    return viewer, w, viewer.layers[f"{RAW} SIM"]


def test_every_slider_updates_the_same_layer_as_the_engine_filters(reconstructed, wait, notes):
    viewer, w, sr = reconstructed
    c, n_layers, bands = w.controls, len(viewer.layers), w.prepared
    for name, value in MOVES.items():
        before = np.array(sr.data)
        getattr(c, name).value = value
        wait(w)  # inline on an idle machine; in a worker when the filter is slow
        after = np.asarray(sr.data)
        assert len(viewer.layers) == n_layers and viewer.layers[f"{RAW} SIM"] == sr
        assert np.abs(after - before).mean() > 1e-3 * np.abs(before).mean(), name
        np.testing.assert_allclose(after, wiener_filter(w.prepared, c.filter_settings()), rtol=1e-5, atol=1e-4)
        assert sr.metadata["napari_sim_ml"]["filter"][name] == pytest.approx(value, rel=0.01)
        assert w.prepared is bands  # a slider never re-prepares the bands
    got = asdict(c.filter_settings())  # the settings are the values moved to (log slider: within 1 %)
    assert {k: got[k] for k in MOVES} == pytest.approx(MOVES, rel=0.01)
    assert w.session.filter == c.filter_settings() and not notes()


def test_a_larger_wiener_parameter_smooths_and_the_spectrum_follows(reconstructed, wait):
    viewer, w, sr = reconstructed
    w.controls.wiener.value = 0.005
    wait(w)
    rough = np.abs(np.diff(np.asarray(sr.data), axis=1)).mean()
    w.controls.wiener.value = 0.5
    wait(w)
    assert np.abs(np.diff(np.asarray(sr.data), axis=1)).mean() < 0.8 * rough
    spectrum = w.spectra.model.layers[f"{RAW} SIM spectrum"]  # in the spectra's own canvas
    np.testing.assert_allclose(spectrum.data, log_spectrum(sr.data), rtol=1e-4)


def test_slow_filter_moves_to_a_latest_value_wins_worker(reconstructed, wait, notes):
    viewer, w, sr = reconstructed
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
