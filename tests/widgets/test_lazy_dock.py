"""A lazy raw layer in the dock: the main thread reads no frame for the dock; the workers read one plane."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_the_dock_reads_only_the_plane_it_needs_in_the_worker(make_napari_viewer_proxy, wait, notes):
    import dask.array as da

    from napari_sim_ml._qt import SimWidget
    from napari_sim_ml.engine.simulate import simulate_acquisition

    acq = simulate_acquisition("filaments", size=128, photons=1000.0, seed=2)
    frames = np.concatenate([acq.raw.reshape(9, 128, 128)] * 3).astype(np.float32)  # 3 time points
    reads: list[tuple[int, bool]] = []  # (frame, on the main thread)

    def frame(block_id=None):
        index = block_id[0]
        reads.append((index, threading.current_thread() is threading.main_thread()))
        return frames[index:index + 1]

    lazy = da.map_blocks(frame, chunks=((1,) * 27, (128,), (128,)), dtype=np.float32)
    viewer = make_napari_viewer_proxy()
    viewer.add_image(lazy, name="lazy", contrast_limits=(0.0, float(frames.max())), multiscale=False)
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    c = w.controls
    c.na.value, c.wavelength_nm.value, c.pixel_size_um.value = (acq.optics.na, acq.optics.wavelength_nm,
                                                                acq.optics.pixel_size_um)
    c.background.value = acq.offset
    c.n_z.value, c.order.value = 1, "PAZ"  # 3 time points of 3 angles × 3 phases
    viewer.dims.set_current_step(0, 13)  # a frame of time point 1
    shown = {i for i, _ in reads}
    reads.clear()
    w.reconstruct()
    wait(w)
    assert "lazy SIM" in [layer.name for layer in viewer.layers], notes()
    assert w.job.plane == 1
    main = {i for i, on_main in reads if on_main} - shown  # napari itself may redraw the shown frame
    assert not main, f"frames {sorted(main)} were read on the main thread"
    worker = {i for i, on_main in reads if not on_main}
    offset_sample = set(range(0, 27, 3))  # the camera-offset check reads 9 frames, subsampled
    assert set(range(9, 18)) <= worker <= set(range(9, 18)) | offset_sample  # one plane, never the stack
