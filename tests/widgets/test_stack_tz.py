"""A dock stack with both T > 1 and Z > 1 (issue 12 item 6): Reconstruct all gives a (t, z) result
with a slider for each, every plane in its place, and the current plane matches its all-planes image."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import sample_stack_viewer

N_T, N_Z = 2, 2
SCALE = ((1.0, 1 / 2), (1 / 3, 1 / 4))  # plane (t, z) = the sample's signal × SCALE[t][z]


def _tz_viewer(make_viewer):
    """A raw layer of T = 2 time points × Z = 2 planes in PAZ order (phase fastest, then angle, z, t)."""
    return sample_stack_viewer(make_viewer, "tz",
                               lambda signal: [signal * SCALE[t][z] for t in range(N_T) for z in range(N_Z)],
                               n_z=N_Z, order="PAZ")


@pytest.mark.slow
def test_time_lapse_z_stack_in_the_dock(make_napari_viewer_proxy, wait, notes):
    viewer, w = _tz_viewer(make_napari_viewer_proxy)
    assert (w.controls.n_z.value, w.controls.order.value) == (N_Z, "PAZ")
    w.reconstruct_all()
    wait(w)
    stack = viewer.layers["tz SIM all planes"]
    assert stack.data.shape == (N_T, N_Z, 1, 512, 512)  # its own t and z axes, one spanning raw-frame pixel
    assert tuple(viewer.dims.axis_labels[:3]) == ("SIM t", "SIM z", "raw frame")
    data = np.asarray(stack.data)[:, :, 0]
    inner = (slice(32, -32), slice(32, -32))
    reference = np.abs(data[0, 0][inner]).mean()
    for t in range(N_T):
        for z in range(N_Z):  # each plane in its (t, z) place: the reconstruction is linear in the signal
            assert np.abs(data[t, z][inner]).mean() / reference == pytest.approx(SCALE[t][z], rel=0.02), (t, z)
    # the current plane: a frame of time point 1, z plane 0 (frames 18-26 of 36) reconstructs that plane
    viewer.dims.set_current_step(viewer.dims.ndim - 3, 22)
    w.reconstruct()
    wait(w)
    np.testing.assert_allclose(np.asarray(viewer.layers["tz SIM"].data), data[1, 0], rtol=1e-3,
                               atol=1e-3 * float(np.abs(data[1, 0]).max()))
    assert not [m for m in notes() if "fail" in m or "error" in m.lower()]
