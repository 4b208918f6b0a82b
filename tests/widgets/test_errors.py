"""Bad input in the UI: a clear notification, no traceback, and the viewer keeps working."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml._qt import SimWidget
from napari_sim_ml.engine.io import write_tiff

RAW = "SIM raw 3x3"


def _errors(notes):
    return [m for m in notes() if m]


@pytest.mark.slow
def test_2d_image_selected(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    viewer.add_image(np.random.default_rng(0).random((64, 64), dtype=np.float32), name="flat")
    w.select_layer("flat")
    assert w.estimate() is None and w.reconstruct() is None and w.reconstruct_all() is None
    assert any("'flat' is a single 2-D image" in m and "angles × phases frames" in m for m in notes())
    assert not w.busy
    # the viewer and the widget still work: the raw stack estimates fine afterwards
    w.select_layer(RAW)
    w.estimate()
    wait(w)
    assert w.result is not None and w.table.rowCount() == 3


def test_wrong_frame_count(sim_viewer, notes):
    viewer, w = sim_viewer
    frames = np.asarray(viewer.layers[RAW].data)[:8]
    viewer.add_image(np.concatenate([frames, frames[:2]]), name="ten frames")  # 10 frames
    w.select_layer("ten frames")
    assert (w.controls.angles.value, w.controls.phases.value) == (3, 3)  # no usual layout fits: kept
    assert w.estimate() is None
    assert any("10 frames cannot be split into 3 angles × 3 phases" in m for m in notes())
    w.controls.phases.value = 5  # 10 = 2 angles × 5 phases is accepted by the layout check
    w.controls.angles.value = 2
    notes_before = len(notes())
    job = w._gather()
    assert job.layout.n_angles == 2 and len(notes()) == notes_before


def test_no_pattern_found(make_napari_viewer_proxy, wait, notes):
    viewer = make_napari_viewer_proxy()
    rng = np.random.default_rng(3)
    noise = rng.poisson(200.0, (9, 96, 96)).astype(np.uint16)  # no illumination pattern at all
    viewer.add_image(noise, name="noise")
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    worker = w.estimate()
    assert worker is not None
    wait(w)
    messages = notes()
    assert any("no illumination pattern detected for angle 0" in m for m in messages), messages
    assert all("Traceback" not in m and "--params" not in m for m in messages)
    assert w.result is None and w.table.rowCount() == 0
    assert [layer.name for layer in viewer.layers] == ["noise"]  # nothing half-made was added
    # reconstruct on the same data fails the same way, and the widget is free again
    w.reconstruct()
    wait(w)
    assert sum("no illumination pattern" in m for m in notes()) == 2
    assert w.controls.estimate.enabled and not w.busy


@pytest.mark.slow
def test_missing_otf_file(sim_viewer, wait, notes, tmp_path):
    _, w = sim_viewer
    w.controls.otf.value = "from file"
    w.controls.otf_file.value = tmp_path / "nope.tif"
    w.estimate()
    wait(w)
    assert any("OTF/PSF file not found" in m for m in notes())
    w.controls.otf.value = "attenuated"
    w.estimate()
    wait(w)
    assert w.result is not None
    # a measured PSF (Gaussian, as a TIFF with its pixel size) works as the OTF source
    yy, xx = np.mgrid[-32:32, -32:32]
    psf = np.exp(-(yy**2 + xx**2) / (2 * 1.1**2)).astype(np.float32)
    write_tiff(tmp_path / "psf.tif", psf, 0.08)
    w.controls.otf.value = "from file"
    w.controls.otf_file.value = tmp_path / "psf.tif"
    assert w.result is None  # changing the OTF invalidates the estimate
    w.estimate()
    wait(w)
    assert w.result is not None and w.table.rowCount() == 3


@pytest.mark.slow
def test_unwritable_export_path(sim_viewer, wait, notes, tmp_path):
    _, w = sim_viewer
    assert w.export(tmp_path / "early.tif") is None
    assert any("reconstruct first" in m for m in notes())
    w.reconstruct()
    wait(w)
    assert w.export(tmp_path / "no such folder" / "out.tif") is None
    assert any("export failed" in m and "output folder does not exist" in m for m in notes())
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    assert w.export(blocker / "out.tif") is None
    assert not list(tmp_path.glob("**/*.tif"))
    # still working: a good path exports
    assert w.export(tmp_path / "ok.tif") is not None
    assert (tmp_path / "ok.tif").exists()


@pytest.mark.slow
def test_inputs_changed_while_computing(sim_viewer, wait, notes):
    viewer, w = sim_viewer
    assert w.estimate() is not None
    w.controls.na.value = 1.3  # before the worker's result is delivered
    wait(w)
    assert w.result is None and w.table.rowCount() == 0
    assert any("inputs changed while computing" in m for m in notes())
    assert f"{RAW} peaks" not in [layer.name for layer in (*viewer.layers, *w.spectra.model.layers)]
    w.estimate()
    wait(w)
    assert w.result is not None


def test_reconstructions_refuse_loaded_parameters_of_another_layout(sim_viewer, notes):
    """Both runs check the job and then its parameters alike: refused with the sentence, no worker."""
    from napari_sim_ml.engine.parameters import PatternParameters
    from napari_sim_ml.engine.simulate import simulate_acquisition

    _viewer, w = sim_viewer
    two = simulate_acquisition("filaments", 32, seed=0).params
    w.session.load(PatternParameters(two.angles[:2]), "two angles.json")
    for start in (w.reconstruct, w.reconstruct_all):
        before = len(notes())
        assert start() is None and w._main.worker is None  # no reconstruction started
        assert len(notes()) == before + 1
        assert "describe 2 angles × 3 phases, but the layout is 3 × 3" in notes()[-1]
        assert "describe 2 angles" in w.status.text()
