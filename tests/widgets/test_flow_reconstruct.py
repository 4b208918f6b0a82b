"""Reconstruct: widefield and SIM on the 2× grid, overlaying the raw layer, registered on the truth."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import correlation_shift

pytestmark = pytest.mark.gui
RAW = "SIM raw 3x3"
PX = 0.08
INNER = (slice(48, -48), slice(48, -48))


def test_reconstruct_overlays_the_raw_layer_and_registers_on_the_truth(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    raw = viewer.layers[RAW]
    global_state = (tuple(viewer.dims.axis_labels), viewer.scale_bar.visible, viewer.theme)
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
    truth = viewer.layers["SIM truth 3x3"]
    assert tuple(truth.scale) == pytest.approx(tuple(sr.scale))
    assert np.abs(correlation_shift(truth.data[INNER], sr.data[INNER])).max() < 0.1

    def corr(a):
        return np.corrcoef(a[INNER].ravel(), truth.data[INNER].ravel())[0, 1]

    assert corr(sr.data) > corr(wf.data) + 0.05  # and resolves more than the widefield
    assert sr.metadata["napari_sim_ml"]["params"]["angles"][0]["k_cycles_per_um"] == pytest.approx(
        list(w.result.params.angles[0].k_cycles_per_um))
    # the session holds what the layers show; other panels read the same inputs
    assert w.session.image is w.session.reconstruction.image and w.session.prepared is not None
    job, params, base = w.context()
    assert base == RAW and params == w.result.params and job.frames.shape == (9, 256, 256)
    # the plugin never changes global viewer state
    assert (tuple(viewer.dims.axis_labels), viewer.scale_bar.visible, viewer.theme) == global_state
