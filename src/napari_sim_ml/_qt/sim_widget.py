"""The SIM reconstruction dock: a thin view of a :class:`~napari_sim_ml.session.SimSession`.

The dock gathers its fields into the session, starts workers and places layers; the
state (inputs, estimate, prepared bands, image, all-planes result, version) lives in
the Qt-free session, and the layers follow its events (a new estimate fills the table
and the spectra, a new reconstruction places its layers, a re-filtered image updates
the SIM layer in place).

Threading: engine work runs in napari workers (``_workers``); layers, widgets and the
viewer are touched only here, in main-thread callbacks. Slider moves re-filter the
cached bands on the main thread (a few ms) and update the existing layers in place;
the reconstruction's spectrum and a change of the current z/time plane are computed
in latest-value-wins workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import napari
from napari.layers import Image
from qtpy.QtWidgets import QLabel, QMessageBox, QVBoxLayout, QWidget

from ..engine.errors import SimInputError
from ..session.model import SimSession
from ..session.tasks import (
    Failure,
    Job,
    run_all,
    run_estimate,
    run_filter,
    run_offset_check,
    run_reconstruct,
    run_spectrum,
)
from . import _layers as L
from ._controls import Controls
from ._export import export_shown
from ._inputs import current_plane, gather, prefill, push_inputs
from ._notify import notify
from ._pattern_source import PatternSource, apply_typed, update_time_mean
from ._planes import AllPlanesView, plane_words
from ._results import ResultView
from ._settings import SettingsSaver
from ._spectra_view import SpectraView
from ._table import make_evidence_label, make_table
from ._workers import LatestValueRunner, SessionWorker
from .denoiser import DenoiserPanel
from .learned import LearnedPanel

INLINE_FILTER_MS = 25.0  # above this running cost, slider moves filter in a worker
__all__ = ["INLINE_FILTER_MS", "SimWidget", "plane_words"]


class SimWidget(QWidget):
    """Dock widget: raw layer → estimate → reconstruct → live filter sliders → export."""

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.controls = c = Controls(self._layer_choices)
        self.table = make_table()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.evidence = make_evidence_label()
        layout = QVBoxLayout(self)
        self.session = session = SimSession()
        self.pattern = PatternSource(session)  # parameters loaded from a JSON file (the session's ``loaded``)
        self.spectra = spectra = SpectraView(viewer)  # spectra in cycles/µm, in a canvas of their own
        self.destroyed.connect(lambda *_: spectra.close())
        self.learned = LearnedPanel(viewer, self.context, session)
        self.denoiser = DenoiserPanel(viewer, self.context, c.filter_settings, session)
        for w in (c.top.native, self.table, self.evidence, c.bottom.native, self.status, self.learned, self.denoiser):
            layout.addWidget(w)
        layout.addStretch(1)
        self._planes = AllPlanesView(viewer, self.status)
        self.last_move_ms = self.last_apply_ms = float("nan")  # main-thread cost of the last move
        self._main = SessionWorker(session, self.status, c, self._alive)
        self._offset_runner = LatestValueRunner(run_offset_check, self._on_offset_checked)
        self._spectrum_runner = LatestValueRunner(run_spectrum, lambda out: self.view.show_spectrum(out))
        self._plane_runner = LatestValueRunner(run_reconstruct, self._on_plane)
        self._filter_runner = LatestValueRunner(run_filter, self._on_filtered)
        self.inline_filter_ms = INLINE_FILTER_MS
        self.filter_cost_ms = 0.0  # running average of the Wiener filter's cost
        self._saver = SettingsSaver(self, c)
        for w in (*c.inputs[1:], c.time_mean, c.keep_k):
            w.changed.connect(self._on_input_changed)
        for w in (c.angles, c.phases, c.n_z):
            w.changed.connect(lambda _v=None: update_time_mean(self.controls, self.viewer))
        self.view = ResultView(self, c.filter_settings, self._spectrum_runner.submit)
        self.table.itemChanged.connect(lambda item: apply_typed(self, item))
        c.load_params.changed.connect(lambda: self.load_parameters())
        session.events.version.connect(self._drop_runs)
        c.layer.changed.connect(self._on_layer_selected)
        for w in c.sliders:
            w.changed.connect(self._on_filter_changed)
        c.estimate.changed.connect(self.estimate)
        c.reconstruct.changed.connect(self.reconstruct)
        c.reconstruct.changed.connect(self.denoiser.on_reconstruct)
        c.reconstruct_all.changed.connect(self.reconstruct_all)
        c.cancel.changed.connect(self.cancel)
        c.export.changed.connect(lambda: self.export())
        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)
        viewer.dims.events.current_step.connect(self._on_step)
        self._refresh_layers()
        self._on_layer_selected(c.layer.value)  # the combo box picked its first choice before connecting

    # ------------------------------------------------------------ inputs
    def _layer_choices(self, _widget: Any = None) -> list[str]:
        return [layer.name for layer in self.viewer.layers
                if isinstance(layer, Image) and not L.is_output_layer(layer)]

    def _refresh_layers(self, _event: Any = None) -> None:
        try:
            self.controls.layer.reset_choices()
        except RuntimeError:  # the dock was closed
            return

    def select_layer(self, name: str) -> None:
        self._refresh_layers()
        self.controls.layer.value = name

    def save_settings(self) -> None:
        """Write the persisted inputs now (also done 300 ms after the last change)."""
        self._saver.save()

    def hideEvent(self, event: Any) -> None:  # Qt override: flush pending settings on close/hide
        self._saver.flush()
        super().hideEvent(event)

    # ------------------------------------------------------------ the session's state (read-only views)
    estimate_output = property(lambda self: self.session.estimate, doc="EstimateOutput of the current inputs.")

    @property
    def result(self) -> Any:
        """EstimationResult in use (estimated, refitted or typed), or None."""
        return getattr(self.session.estimate, "result", None)

    @result.setter
    def result(self, value: Any) -> None:  # a typed value (apply_typed shows it itself)
        with self.session.events.estimate.blocked():
            self.session.use_result(value)

    prepared = property(lambda self: self.session.prepared, doc="Cached bands of the shown plane, or None.")
    job = property(lambda self: self.session.job, doc="The Job the shown plane's results were made from.")
    base = property(lambda self: self.session.base, doc="Name of the raw layer the output layers belong to.")
    all_planes = property(lambda self: self.session.all_planes, doc="AllOutput of 'Reconstruct all', or None.")

    def _on_input_changed(self, _value: Any = None) -> None:
        """Copy the changed field into the session, which drops what depends on it (every result)."""
        try:
            push_inputs(self.controls, self.session)
        except SimInputError:
            pass  # said when the inputs are used
        self.session.drop_results()

    _invalidate = _on_input_changed

    def _drop_runs(self, _version: Any = None) -> None:
        """Drop the runners' results in flight: the inputs changed."""
        for runner in (self._spectrum_runner, self._plane_runner, self._filter_runner):
            runner.invalidate()

    def _on_layer_selected(self, name: str | None) -> None:
        """Prefill optics, layout and camera offset from the layer's metadata."""
        layer = L.find_layer(self.viewer, name)
        if layer is not None:
            prefill(self.controls, layer)
        self.session.source, self.session.data = (layer.name, layer.data) if layer is not None else ("", None)
        update_time_mean(self.controls, self.viewer)
        self._on_input_changed()
        self.table.setRowCount(0)  # the table described the previous layer
        self.evidence.setText("")
        self.status.setText("")
        if self.pattern.params is not None and layer is not None:  # a calibration applies to other data too
            self.pattern.show(self, float(self.controls.pixel_size_um.value), layer.data.shape[-2:])
            self.status.setText(f"the parameters loaded from {self.pattern.name} are used (Estimate drops them)")

    def _gather(self) -> Job:
        return gather(self.viewer, self.controls, self.session)

    def context(self) -> tuple[Job, Any, str]:
        """Give other panels (e.g. the learned reconstruction) the current inputs.

        Returns (job, PatternParameters in use or None, raw layer name); raises
        SimInputError with a sentence on bad input.
        """
        job = self._gather()
        return job, self.session.params_for_run(job), self.controls.layer.value

    def _frame_shape(self) -> tuple[int, ...]:
        """(Y, X) of the selected layer's frames ((1, 1) without one)."""
        layer = L.find_layer(self.viewer, self.controls.layer.value)
        return tuple(layer.data.shape[-2:]) if layer is not None else (1, 1)

    def load_parameters(self, path: str | Path | None = None) -> bool:
        """Use a parameters JSON instead of an estimate (a file dialog asks without ``path``)."""
        return self.pattern.load(self, path)

    def _run_inputs_or_notify(self) -> tuple[Job, Any] | None:
        """(job, PatternParameters or None) a reconstruction runs with; None after a notification."""
        job = self._job_or_notify()
        if job is None:
            return None
        try:
            return job, self.session.params_for_run(job)
        except SimInputError as exc:
            notify("error", str(exc), self.status)
            return None

    def _job_or_notify(self) -> Job | None:
        try:
            job = self._gather()
        except SimInputError as exc:
            notify("error", str(exc), self.status)  # the whole sentence also in the status line
            return None
        if job.background > 0:
            self._offset_runner.submit(job)  # reads a few frames: in a worker
        return job

    def _on_offset_checked(self, warning: str | None) -> None:
        if warning:
            notify("warning", warning)

    # ------------------------------------------------------------ workers
    @property
    def busy(self) -> bool:
        runners = (self._spectrum_runner, self._plane_runner, self._filter_runner, self._offset_runner)
        return self._main.worker is not None or any(r.busy for r in runners)

    def _start(self, fn: Callable[..., Any], args: tuple, on_result: Callable[[Any], None], **kwargs: Any) -> Any:
        return self._main.start(fn, args, on_result, **kwargs)

    def _alive(self) -> bool:
        """Tell whether the dock's Qt object still exists (it may close while a worker runs)."""
        try:
            self.objectName()
        except RuntimeError:
            return False
        return True

    def estimate(self) -> Any:
        job = self._job_or_notify()
        if job is None:
            return None
        if job.known is not None:
            self.status.setText(f"refitting the phases at the k of {self.pattern.name}…")
        else:
            if self.pattern.params is not None:
                notify("info", f"estimating on these frames; the parameters loaded from {self.pattern.name} "
                       "are dropped")
                self.pattern.clear(self.controls)
            self.status.setText("estimating the pattern…")
        return self._start(run_estimate, (job,), lambda out: self._on_estimated(out, job),
                           progress={"desc": "SIM: estimating the pattern"}, on_failure=self._on_estimate_failed)

    def _on_estimate_failed(self, out: Any) -> None:
        """No stale table or parameters of another dataset after a failed estimate."""
        self.session.estimate = self.session.params = None
        self.table.setRowCount(0)
        self.evidence.setText("")
        self.status.setText(f"estimate failed: {out.message}")

    def reconstruct(self) -> Any:
        inputs = self._run_inputs_or_notify()
        if inputs is None:
            return None
        job, params = inputs
        self.status.setText("reconstructing…")
        return self._start(run_reconstruct, (job, params, self.controls.filter_settings()),
                           lambda out: self._on_reconstructed(out, job, fresh=True),
                           progress={"desc": "SIM: reconstructing"})

    def reconstruct_all(self) -> Any:
        inputs = self._run_inputs_or_notify()
        if inputs is None:
            return None
        job, params = inputs
        worker = self._start(run_all, (job, params, self.controls.filter_settings()),
                             lambda out: self._on_all(out, job), cancellable=True,
                             progress={"total": job.n_planes, "desc": "SIM: reconstructing all planes"})
        if worker is not None:
            worker.aborted.connect(lambda: notify("info", "Reconstruct all was cancelled; nothing was added"))
        return worker

    def cancel(self) -> None:
        self._main.quit()

    # ------------------------------------------------------------ results (main thread)
    def _raw_layer(self, job: Job) -> Any:
        return L.find_layer(self.viewer, job.layer_name)

    def _on_estimated(self, out: Any, job: Job) -> None:
        self.session.accept_estimate(out, job)

    def _on_reconstructed(self, out: Any, job: Job, fresh: bool = False) -> None:
        if out.estimate is not None:
            self._on_estimated(out.estimate, job)
        if self._raw_layer(job) is None:
            notify("error", "the raw layer was removed while reconstructing", self.status)
            return
        self._spectrum_runner.invalidate()  # results for the previous image must not land here
        self._filter_runner.invalidate()
        if fresh:  # a Reconstruct press supersedes plane changes still in flight
            self._plane_runner.invalidate()
        self.session.accept_reconstruction(out, job)

    def _on_plane(self, out: Any) -> None:
        """Take a new current plane, prepared in a worker: the layers are updated in place."""
        if isinstance(out, Failure):
            notify("error", out.message, self.status)
        elif self.prepared is not None and self.job is not None:
            self._on_reconstructed(out, replace(self.job, plane=out.plane))
            self._on_filter_changed()

    def _on_step(self, _event: Any = None) -> None:
        self._planes.say(self.base)
        if self.prepared is None or self.job is None or self.job.n_planes == 1:
            return
        layer = L.find_layer(self.viewer, self.base)
        if layer is None:
            return
        plane = current_plane(self.viewer, layer, self.job)
        if plane != self.job.plane:
            self._plane_runner.submit(replace(self.job, plane=plane), self.prepared.params,
                                      self.controls.filter_settings())

    def _on_filter_changed(self, _value: Any = None) -> None:
        """Slider move: the session keeps its bands; re-filter them and update the SIM layer in place.

        The filter runs inline while its running cost stays below ``inline_filter_ms``
        (a few ms at 512²); on a slower machine or a larger stack it moves to a
        latest-value-wins worker, and the main thread only copies the result in.
        """
        t0 = time.perf_counter()
        try:
            settings = self.controls.filter_settings()
        except SimInputError as exc:
            notify("error", str(exc), self.status)
            return
        self.session.filter = settings  # drops the filtered image only
        if self.prepared is None or L.find_layer(self.viewer, f"{self.base} SIM") is None:
            return
        if self._filter_runner.busy or self.filter_cost_ms > self.inline_filter_ms:
            self._filter_runner.submit(self.prepared, settings)
        else:
            self._on_filtered(run_filter(self.prepared, settings))
        self.last_move_ms = (time.perf_counter() - t0) * 1e3

    def _on_filtered(self, out: Any) -> None:
        if isinstance(out, Failure):
            notify("error", out.message, self.status)
            return
        t0 = time.perf_counter()
        image, settings, cost_ms = out
        self.filter_cost_ms = cost_ms if self.filter_cost_ms == 0 else 0.5 * (self.filter_cost_ms + cost_ms)
        if self.session.accept_image(image, settings):  # an older move's image is dropped
            self.last_apply_ms = (time.perf_counter() - t0) * 1e3

    def _on_all(self, out: Any, job: Job) -> None:
        layer = self._raw_layer(job)
        if layer is None:
            if out.estimate is not None:
                self._on_estimated(out.estimate, job)
            return
        self.session.accept_all(out, job)
        self._planes.place(self.base, out, layer, job.layout.n_z, self.view.meta(job, "reconstruction", out.params),
                           self.view.z_step(job))

    # ------------------------------------------------------------ export
    def _confirm_overwrite(self, existing: list[Path]) -> bool:
        names = ", ".join(p.name for p in existing)
        answer = QMessageBox.question(self, "Overwrite files?", f"{names} already exist. Replace them?")
        return answer == QMessageBox.StandardButton.Yes

    def export(self, path: str | Path | None = None) -> list[str] | None:
        """Write what is on screen; asks before overwriting.

        That is the reconstruction (current plane or all planes), the widefield, the
        parameters (JSON) and the shown PINN image, σ and residual.
        """
        return export_shown(self, path)
