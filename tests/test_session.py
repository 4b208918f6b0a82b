"""The dock's session model without Qt or a viewer: invalidation, versions, lazy reads, scripting."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.io import FrameLayout
from napari_sim_ml.engine.parameters import FilterSettings, Optics
from napari_sim_ml.engine.pipeline import OtfSpec
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter
from napari_sim_ml.session import DROPS, SimSession
from napari_sim_ml.session.model import DATASET_INPUTS, RESULTS

SIZE = 128


@pytest.fixture(scope="module")
def acq():
    return simulate_acquisition("filaments", size=SIZE, photons=1000.0, seed=4)


def _filled(session: SimSession) -> None:
    """Every result set to a distinct placeholder object."""
    for name in RESULTS:
        setattr(session, name, SimpleNamespace(name=name))


NEW_VALUES = {
    "data": np.zeros((9, 64, 64)), "source": "other", "layout": FrameLayout(3, 3, 1, "APZ"),
    "optics": Optics(1.2, 525.0, 0.08), "background": 50.0, "otf": ("attenuated", 0.5, ""),
    "plane": 1, "filter": FilterSettings(wiener=0.2), "pinn": SimpleNamespace(iterations=3),
}


@pytest.mark.parametrize("name", list(NEW_VALUES))
def test_each_input_drops_exactly_what_depends_on_it(name):
    session = SimSession(data=np.ones((27, 64, 64)))
    _filled(session)
    version = session.version
    dropped = []
    for result in RESULTS:
        getattr(session.events, result).connect(lambda value, *_, _r=result: value is None and dropped.append(_r))
    setattr(session, name, NEW_VALUES[name])
    gone = {r for r in RESULTS if getattr(session, r) is None}
    assert gone == set(DROPS[name]) and sorted(dropped) == sorted(gone)
    assert session.is_current(version) == (name not in DATASET_INPUTS)


def test_the_table_the_issue_names():
    dataset = set(RESULTS)
    assert set(DROPS["optics"]) == dataset  # the optics drop the estimate and the reconstruction
    assert set(DROPS["filter"]) == {"image"}  # the Wiener slider keeps the prepared bands
    assert {"estimate", "params", "all_planes"}.isdisjoint(DROPS["plane"])  # another plane keeps the estimate


def test_setting_the_same_value_drops_nothing():
    data = np.ones((9, 64, 64))
    session = SimSession(data=data)
    _filled(session)
    session.data = data  # the same array: compared by identity, never by value
    session.optics = Optics()
    session.filter = FilterSettings()
    assert all(getattr(session, r) is not None for r in RESULTS) and session.version == 0


def test_script_estimate_reconstruct_and_filter_like_the_sliders(acq):
    frames = acq.raw.reshape(-1, SIZE, SIZE)
    session = SimSession(data=frames, source="sim", optics=acq.optics, background=acq.offset)
    est = session.run_estimate()
    k_true = sorted(a.k_magnitude for a in acq.params.angles)
    k_est = sorted(a.k_magnitude for a in est.result.params.angles)
    assert np.allclose(k_est, k_true, rtol=0.005)
    image = session.run_reconstruct()
    prepared = session.prepared
    expected = wiener_filter(prepare_reconstruction(acq.raw, acq.optics, session.params,
                                                    OtfSpec().make(acq.optics), acq.offset), session.filter)
    np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-5)
    session.filter = replace(session.filter, wiener=0.3)  # a slider move
    assert session.prepared is prepared and session.image is None and session.estimate is est
    smooth = session.run_filter()
    np.testing.assert_allclose(smooth, wiener_filter(prepared, session.filter), rtol=1e-6)
    assert session.image is smooth
    assert np.abs(np.diff(smooth, axis=1)).mean() < np.abs(np.diff(image, axis=1)).mean()
    session.optics = replace(session.optics, na=1.3)  # another objective: nothing computed survives
    assert session.estimate is session.prepared is session.image is session.params is None
    with pytest.raises(SimInputError, match="reconstruct first"):
        session.run_filter()


def test_a_result_of_older_inputs_is_stale(acq):
    session = SimSession(data=acq.raw.reshape(-1, SIZE, SIZE), optics=acq.optics, background=acq.offset)
    version = session.version
    session.background = 90.0  # changed while a worker computed
    assert not session.is_current(version)
    session.filter = FilterSettings(wiener=0.1)
    session.plane = 0
    assert session.is_current(version + 1)


class CountingFrames:
    """An array-like (F, Y, X) that counts the frames read from it (a stand-in for a lazy file)."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames, self.read = frames, 0
        self.shape, self.dtype, self.ndim = frames.shape, frames.dtype, frames.ndim

    def __getitem__(self, key):
        out = self._frames[key]
        self.read += int(np.prod(out.shape[:-2])) if out.ndim > 2 else 1
        return out


def test_a_lazy_stack_is_read_one_plane_at_a_time(acq):
    planes = np.concatenate([acq.raw.reshape(-1, SIZE, SIZE)] * 3)  # 3 planes of 9 frames
    data = CountingFrames(planes)
    session = SimSession(data=data, optics=acq.optics, background=acq.offset,
                         layout=FrameLayout(3, 3, 3, "PAZ"), plane=2)
    job = session.make_job()
    assert data.read == 0 and job.n_planes == 3  # building the request reads nothing
    session.run_reconstruct()
    assert data.read == 2 * 9  # the estimate and the reconstruction each read plane 2's frames only
    with pytest.raises(SimInputError, match="10 frames cannot be split"):
        SimSession(data=np.zeros((10, 64, 64))).make_job()
    with pytest.raises(SimInputError, match="single 2-D image"):
        SimSession(data=np.zeros((64, 64)), source="img").make_job()


def test_from_file_opens_lazily_and_reads_the_metadata(tmp_path, acq):
    import tifffile

    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, np.concatenate([acq.raw.reshape(-1, SIZE, SIZE)] * 2).astype(np.float32),
                     imagej=True, resolution=(1 / 0.08, 1 / 0.08), metadata={"unit": "um", "axes": "ZYX"})
    session = SimSession.from_file(path, background=acq.offset)
    assert hasattr(session.data, "dask") and session.layout.frames_per_set == 18
    assert session.optics.pixel_size_um == pytest.approx(0.08)
    session.layout = FrameLayout(3, 3, 1, "PAZ")  # 2 time points of 9 frames
    session.plane = 1
    all_planes = session.run_all()
    assert all_planes.images.shape == (2, 2 * SIZE, 2 * SIZE) and session.params is not None


def test_the_model_imports_no_qt_and_no_napari():
    code = ("import sys, napari_sim_ml.session.model, napari_sim_ml.session.learned; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', "
            "'napari', 'magicgui', 'superqt')]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_loaded_parameters_survive_other_data_and_a_refit_keeps_their_k(acq):
    frames = acq.raw.reshape(-1, SIZE, SIZE)
    session = SimSession(data=frames, optics=acq.optics, background=acq.offset)
    session.load(acq.params, "calib.json")
    version = session.version
    job = session.make_job()
    assert session.params_for_run(job) == acq.params and job.known is None  # used as they are
    session.data = frames.copy()  # other data: the calibration stays, the results go
    assert session.loaded == acq.params and not session.is_current(version)
    session.keep_k = True
    job = session.make_job()
    assert session.params_for_run(job) is None and job.known == acq.params  # the worker refits the phases
    est = session.run_estimate()
    assert [a.k_cycles_per_um for a in est.result.params.angles] == [a.k_cycles_per_um for a in acq.params.angles]
    session.load(None, "")
    assert session.estimate is None and session.make_job().known is None
