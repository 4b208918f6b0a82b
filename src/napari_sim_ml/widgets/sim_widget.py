"""The SIM reconstruction dock: gather parameters, start workers, place layers.

Threading: engine work runs in napari workers (``_workers``); layers, widgets and the
viewer are touched only here, in main-thread callbacks. Slider moves re-filter the
cached bands on the main thread (a few ms) and update the existing layers in place;
the reconstruction's spectrum and a change of the current z/time plane are computed
in latest-value-wins workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import napari
import numpy as np
from napari.layers import Image
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QMessageBox, QVBoxLayout, QWidget

from ..engine.errors import SimInputError
from . import _layers as L
from ._controls import Controls
from ._export import export_paths, learned_exports, write_export, write_layers
from ._inputs import current_plane, gather, offset_warning, prefill
from ._notify import notify
from ._pattern_source import PatternSource, apply_typed, update_time_mean
from ._settings import load_settings, write_settings
from ._spectra_view import SpectraView, spectrum_geometry
from ._table import fill_table, make_evidence_label, make_table, show_evidence
from ._workers import (
    Failure,
    Job,
    LatestValueRunner,
    run_all,
    run_estimate,
    run_filter,
    run_reconstruct,
    run_spectrum,
)
from .denoiser import DenoiserPanel
from .evidence import grade_summary
from .learned import LearnedPanel

INLINE_FILTER_MS = 25.0  # above this running cost, slider moves filter in a worker


def plane_words(n_z: int, n_planes: int, plane: int) -> str:
    """'z 4 of 0–8', 't 1, z 0 (t 0–2, z 0–8)': numbered from 0, as napari's sliders show them."""
    n_z = n_z if n_z > 0 and n_planes % n_z == 0 else 1
    n_t, t, z = n_planes // n_z, plane // n_z, plane % n_z
    if n_t > 1 and n_z > 1:
        return f"t {t}, z {z} (t 0–{n_t - 1}, z 0–{n_z - 1})"
    if n_z > 1:
        return f"z {z} of 0–{n_z - 1}"
    return f"t {t} of 0–{n_t - 1}" if n_t > 1 else "plane 0"


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
        self.learned = LearnedPanel(viewer, self.context)
        self.denoiser = DenoiserPanel(viewer, self.context, c.filter_settings)
        for w in (c.top.native, self.table, self.evidence, c.bottom.native, self.status, self.learned, self.denoiser):
            layout.addWidget(w)
        layout.addStretch(1)
        self.result: Any = None  # EstimationResult of the current inputs
        self.estimate_output: Any = None
        self.prepared: Any = None  # PreparedReconstruction of the shown plane
        self.job: Job | None = None
        self.base = ""  # name of the raw layer the outputs belong to
        self.all_planes: Any = None  # AllOutput of the last "Reconstruct all"
        self._all_status_plane: Any = None  # what the status last said the all-planes layer shows
        self.last_move_ms = self.last_apply_ms = float("nan")  # main-thread cost of the last move
        self._worker: Any = None
        self._version = 0  # bumped whenever an input changes: late results of older inputs are dropped
        self._spectrum_runner = LatestValueRunner(run_spectrum, self._on_spectrum)
        self._plane_runner = LatestValueRunner(run_reconstruct, self._on_plane)
        self._filter_runner = LatestValueRunner(run_filter, self._on_filtered)
        self.inline_filter_ms = INLINE_FILTER_MS
        self.pattern = PatternSource()  # parameters loaded from a JSON file, if any
        self.spectra = spectra = SpectraView(viewer)  # spectra in cycles/µm, in a canvas of their own
        self.destroyed.connect(lambda *_: spectra.close())
        self.filter_cost_ms = 0.0  # running average of the Wiener filter's cost
        c.restore(load_settings())
        self._save_timer = QTimer(self)  # settings are written once a drag or typing pauses
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(300)
        self._save_timer.timeout.connect(self.save_settings)
        for w in c.persisted.values():
            w.changed.connect(self._schedule_save)
        for w in c.inputs[1:]:
            w.changed.connect(self._invalidate)
        c.layer.changed.connect(self._on_layer_selected)
        self.table.itemChanged.connect(lambda item: apply_typed(self, item))
        c.load_params.changed.connect(lambda: self.load_parameters())
        c.time_mean.changed.connect(self._invalidate)
        c.keep_k.changed.connect(self._invalidate)
        for w in (c.angles, c.phases, c.n_z):
            w.changed.connect(lambda _v=None: update_time_mean(self.controls, self.viewer))
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

    def _schedule_save(self, _value: Any = None) -> None:
        self._save_timer.start()

    def save_settings(self) -> None:
        """Write the persisted inputs now (also done 300 ms after the last change)."""
        self._save_timer.stop()
        write_settings(self.controls.values())

    def hideEvent(self, event: Any) -> None:  # Qt override: flush pending settings on close/hide
        if self._save_timer.isActive():
            self.save_settings()
        super().hideEvent(event)

    def _invalidate(self, _value: Any = None) -> None:
        self._version += 1
        self.result = self.prepared = self.all_planes = None
        for runner in (self._spectrum_runner, self._plane_runner, self._filter_runner):
            runner.invalidate()

    def _on_layer_selected(self, name: str | None) -> None:
        """Prefill optics, layout and camera offset from the layer's metadata."""
        layer = L.find_layer(self.viewer, name)
        if layer is not None:
            prefill(self.controls, layer)
        update_time_mean(self.controls, self.viewer)
        self._invalidate()
        self.table.setRowCount(0)  # the table described the previous layer
        self.evidence.setText("")
        self.status.setText("")
        if self.pattern.params is not None and layer is not None:  # a calibration applies to other data too
            self.pattern.show(self, float(self.controls.pixel_size_um.value), layer.data.shape[-2:])
            self.status.setText(f"the parameters loaded from {self.pattern.name} are used (Estimate drops them)")

    def _gather(self) -> Job:
        known = self.pattern.params if self.pattern.refits(self.controls) else None
        return replace(gather(self.viewer, self.controls), time_mean=bool(self.controls.time_mean.value),
                       known=known)

    def _frame_shape(self) -> tuple[int, ...]:
        """(Y, X) of the selected layer's frames ((1, 1) without one)."""
        layer = L.find_layer(self.viewer, self.controls.layer.value)
        return tuple(layer.data.shape[-2:]) if layer is not None else (1, 1)

    def load_parameters(self, path: str | Path | None = None) -> bool:
        """Use a parameters JSON instead of an estimate (a file dialog asks without ``path``)."""
        return self.pattern.load(self, path)

    def _params_or_notify(self, job: Job) -> tuple[bool, Any]:
        """(ok, PatternParameters or None) a run of ``job`` uses; ok False after a notification."""
        try:
            return True, self.pattern.for_run(self, job)
        except SimInputError as exc:
            self.status.setText(str(exc))
            notify("error", str(exc))
            return False, None

    def context(self) -> tuple[Job, Any, str]:
        """(job, estimated PatternParameters or None, raw layer name) for other panels, e.g. the
        learned reconstruction; raises SimInputError with a sentence on bad input.
        """
        job = self._gather()
        return job, self.pattern.for_run(self, job), self.controls.layer.value

    def _job_or_notify(self) -> Job | None:
        try:
            job = self._gather()
        except SimInputError as exc:
            self.status.setText(str(exc))  # the whole sentence (a notification may cut it off)
            notify("error", str(exc))
            return None
        warning = offset_warning(job.frames, job.background)
        if warning:
            notify("warning", warning)
        return job

    # ------------------------------------------------------------ workers
    @property
    def busy(self) -> bool:
        runners = (self._spectrum_runner, self._plane_runner, self._filter_runner)
        return self._worker is not None or any(r.busy for r in runners)

    def _start(self, fn: Callable[..., Any], args: tuple, on_result: Callable[[Any], None],
               progress: Any = None, cancellable: bool = False,
               on_failure: Callable[[Any], None] | None = None) -> Any:
        from napari.qt.threading import create_worker

        if self._worker is not None:
            notify("warning", "a SIM computation is still running; wait for it or press Cancel")
            return None
        kwargs = {"_progress": progress} if progress else {}
        worker = create_worker(fn, *args, _start_thread=False, **kwargs)

        version = self._version

        def returned(out: Any) -> None:
            if not self._alive():
                return
            if version != self._version:
                self.status.setText("the inputs changed while computing; run it again")
                notify("info", "the inputs changed while computing; that result was discarded, please run it "
                       "again")
            elif isinstance(out, Failure):
                self.status.setText(f"failed: {out.message}")
                if on_failure is not None:
                    on_failure(out)
                notify("error", out.message)
            else:
                on_result(out)

        worker.returned.connect(returned)

        def errored(exc: Exception) -> None:  # an unexpected error: never a stuck "…ing" status
            if self._alive():
                self.status.setText(f"failed: {type(exc).__name__}: {exc}")
                if on_failure is not None:
                    on_failure(Failure(f"{type(exc).__name__}: {exc}"))

        worker.errored.connect(errored)
        worker.finished.connect(self._worker_done)
        self._worker = worker
        self.controls.set_busy(True, cancellable)
        worker.start()
        return worker

    def _alive(self) -> bool:
        """False once the dock's Qt object is gone (closed while a worker ran)."""
        try:
            self.objectName()
        except RuntimeError:
            return False
        return True

    def _worker_done(self) -> None:
        self._worker = None
        try:
            self.controls.set_busy(False)
        except RuntimeError:
            pass

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
        self.result = self.estimate_output = None
        self.table.setRowCount(0)
        self.evidence.setText("")
        self.status.setText(f"estimate failed: {out.message}")

    def reconstruct(self) -> Any:
        job = self._job_or_notify()
        if job is None:
            return None
        ok, params = self._params_or_notify(job)
        if not ok:
            return None
        self.status.setText("reconstructing…")
        return self._start(run_reconstruct, (job, params, self.controls.filter_settings()),
                           lambda out: self._on_reconstructed(out, job, fresh=True),
                           progress={"desc": "SIM: reconstructing"})

    def reconstruct_all(self) -> Any:
        job = self._job_or_notify()
        if job is None:
            return None
        ok, params = self._params_or_notify(job)
        if not ok:
            return None
        worker = self._start(run_all, (job, params, self.controls.filter_settings()),
                             lambda out: self._on_all(out, job), cancellable=True,
                             progress={"total": job.n_planes, "desc": "SIM: reconstructing all planes"})
        if worker is not None:
            worker.aborted.connect(lambda: notify("info", "Reconstruct all was cancelled; nothing was added"))
        return worker

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()

    # ------------------------------------------------------------ results (main thread)
    def _raw_layer(self, job: Job) -> Any:
        return L.find_layer(self.viewer, job.layer_name)

    def _on_estimated(self, out: Any, job: Job) -> None:
        layer = self._raw_layer(job)
        self.result, self.estimate_output, self.job = out.result, out, job
        self.base = job.layer_name
        fill_table(self.table, out.result)
        show_evidence(self.evidence, out.result, job.optics.pixel_size_um, job.frames.shape[-2:])
        summary, doubtful = grade_summary(out.result)
        if job.known is not None:
            summary = f"k kept from {self.pattern.name}, phases and modulation refitted; {summary}"
            self.evidence.setText(f"k from {self.pattern.name}, phases refitted:\n" + self.evidence.text())
        self.status.setText(summary)  # which angle and why, in full (a notification may be cut off)
        if doubtful:
            notify("warning", "doubtful pattern in at least one angle; see the highlighted rows and the status line")
        if layer is not None:
            L.show_estimate(self.spectra.ensure(self), self.base, out, job.optics,
                            spectrum_geometry(out.raw_spectrum.shape, job.optics.pixel_size_um),
                            out.result.params.n_orders)
            self.spectra.model.reset_view()  # the whole spectrum in view

    def _recon_meta(self, job: Job, kind: str, params: Any) -> dict[str, Any]:
        optics = job.optics
        return {"kind": kind, "method": "wiener", "source_layer": self.base,
                "optics": {**asdict(optics), "pixel_size_um": optics.pixel_size_um / 2},
                "raw_pixel_size_um": optics.pixel_size_um, "params": params.to_dict(optics),
                "filter": asdict(self.controls.filter_settings()), "layout": asdict(job.layout),
                "background": job.background, "plane": job.plane,
                **({"z_step_um": self._z_step(job)} if self._z_step(job) else {})}

    def _z_step(self, job: Job) -> float | None:
        """The raw layer's z step (µm) when its planes are z planes of one time point, else None."""
        layer = self._raw_layer(job)
        step = L.plugin_meta(layer).get("z_step_um") if layer is not None else None
        return float(step) if step and job.layout.n_z > 1 and job.n_planes == job.layout.n_z else None

    def _on_reconstructed(self, out: Any, job: Job, fresh: bool = False) -> None:
        if out.estimate is not None:
            self._on_estimated(out.estimate, job)
        layer = self._raw_layer(job)
        if layer is None:
            notify("error", "the raw layer was removed while reconstructing", self.status)
            return
        self.prepared, self.job, self.base = out.prepared, job, layer.name
        self._spectrum_runner.invalidate()  # results for the previous image must not land here
        self._filter_runner.invalidate()
        if fresh:  # a Reconstruct press supersedes plane changes still in flight
            self._plane_runner.invalidate()
        geometry = L.fine_geometry(layer)
        L.hide_estimate_layers(self.spectra.model, self.base)
        L.upsert_image(self.viewer, f"{self.base} widefield", out.widefield, geometry,
                       self._recon_meta(job, "widefield", out.prepared.params), colormap="gray")
        L.upsert_image(self.spectra.ensure(self), f"{self.base} SIM spectrum", out.spectrum,
                       spectrum_geometry(out.spectrum.shape, job.optics.pixel_size_um / 2),
                       {"kind": "spectrum", "source_layer": self.base}, colormap="inferno")
        L.upsert_image(self.viewer, f"{self.base} SIM", out.image, geometry,
                       self._recon_meta(job, "reconstruction", out.prepared.params), colormap="gray")
        words = plane_words(job.layout.n_z, job.n_planes, job.plane)
        self.status.setText("\n".join([f"reconstructed {words}", *out.trust]))

    def _on_plane(self, out: Any) -> None:
        """A new current plane, prepared in a worker: update the layers in place."""
        if isinstance(out, Failure):
            notify("error", out.message, self.status)
        elif self.prepared is not None and self.job is not None:
            self._on_reconstructed(out, replace(self.job, plane=out.plane))
            self._on_filter_changed()

    def _on_step(self, _event: Any = None) -> None:
        self._show_all_planes_status()
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
        """Slider move: re-filter the cached bands and update the SIM layer in place.

        The filter runs inline while its running cost stays below ``inline_filter_ms``
        (a few ms at 512²); on a slower machine or a larger stack it moves to a
        latest-value-wins worker, and the main thread only copies the result in.
        """
        if self.prepared is None or L.find_layer(self.viewer, f"{self.base} SIM") is None:
            return
        t0 = time.perf_counter()
        try:
            settings = self.controls.filter_settings()
        except SimInputError as exc:
            notify("error", str(exc), self.status)
            return
        if self._filter_runner.busy or self.filter_cost_ms > self.inline_filter_ms:
            self._filter_runner.submit(self.prepared, settings)
        else:
            out = run_filter(self.prepared, settings)
            self._on_filtered(out)
        self.last_move_ms = (time.perf_counter() - t0) * 1e3

    def _on_filtered(self, out: Any) -> None:
        if isinstance(out, Failure):
            notify("error", out.message, self.status)
            return
        t0 = time.perf_counter()
        image, settings, cost_ms = out
        self.filter_cost_ms = cost_ms if self.filter_cost_ms == 0 else 0.5 * (self.filter_cost_ms + cost_ms)
        layer = L.find_layer(self.viewer, f"{self.base} SIM")
        if layer is None:
            return
        L.update_data(layer, image)
        low, high = np.percentile(image[::4, ::4], (0.1, 99.9))  # the contrast follows the sliders
        if np.isfinite(low) and np.isfinite(high) and high > low:
            layer.contrast_limits = (float(low), float(high))
        layer.metadata.setdefault(L.METADATA_KEY, {})["filter"] = asdict(settings)
        if self.all_planes is not None and L.find_layer(self.viewer, f"{self.base} SIM all planes") is not None:
            self.status.setText("the sliders change the current plane; the all-planes result keeps its settings "
                                "until Reconstruct all runs again")
        self._spectrum_runner.submit(image)
        self.last_apply_ms = (time.perf_counter() - t0) * 1e3

    def _on_spectrum(self, out: Any) -> None:
        layer = L.find_layer(self.spectra.model, f"{self.base} SIM spectrum")
        if layer is not None and not isinstance(out, Failure):
            L.update_data(layer, out)

    def _on_all(self, out: Any, job: Job) -> None:
        if out.estimate is not None:
            self._on_estimated(out.estimate, job)
        layer = self._raw_layer(job)
        if layer is None:
            return
        self.all_planes = out
        data, geometry = L.plane_stack(out.images, layer, L.fine_geometry(layer), job.layout.n_z, self._z_step(job))
        meta = self._recon_meta(job, "reconstruction", out.params)
        L.upsert_image(self.viewer, f"{self.base} SIM all planes", data, geometry,
                       {**meta, "plane": "all", "display_axes": L.display_axes_meta(data, layer)}, colormap="gray")
        self._all_status_plane = None
        self._show_all_planes_status(force=True)

    def _shown_all_plane(self) -> tuple[int, int, int] | None:
        """(flat plane index t·Z + z, Z, number of planes) the all-planes layer shows at the
        viewer's current point, or None without that layer.
        """
        stack = L.find_layer(self.viewer, f"{self.base} SIM all planes")
        meta = L.plugin_meta(stack)
        planes_shape = (meta.get("display_axes") or {}).get("planes_shape")
        if stack is None or not planes_shape:
            return None
        coords = stack.world_to_data(self.viewer.dims.point)[:len(planes_shape)]
        index = [int(np.clip(round(v), 0, n - 1)) for v, n in zip(coords, planes_shape, strict=False)]
        n_z = int((meta.get("layout") or {}).get("n_z", 1))
        return int(np.ravel_multi_index(index, planes_shape)), n_z, int(np.prod(planes_shape))

    def _show_all_planes_status(self, force: bool = False) -> None:
        """The status names the plane the all-planes layer shows, numbered as its slider(s)."""
        shown = self._shown_all_plane()
        if shown is None or (shown == self._all_status_plane and not force):
            return
        self._all_status_plane = shown
        plane, n_z, n = shown
        n_z = n_z if n % max(n_z, 1) == 0 else 1
        axes = " and ".join(f"'{label}'" for label, _ in L.plane_axes(n // n_z, n_z))
        self.status.setText(f"reconstructed all {n} planes into '{self.base} SIM all planes' (browse them with its "
                            f"{axes} slider); shown: {plane_words(n_z, n, plane)}")

    # ------------------------------------------------------------ export
    def _confirm_overwrite(self, existing: list[Path]) -> bool:
        names = ", ".join(p.name for p in existing)
        answer = QMessageBox.question(self, "Overwrite files?", f"{names} already exist. Replace them?")
        return answer == QMessageBox.StandardButton.Yes

    def _export_source(self) -> tuple[Any, list[np.ndarray]] | None:
        """What is on screen: the all-planes stack when it is shown above (or instead of) the
        current-plane result, else the current plane as the sliders left it.
        """
        sr = L.find_layer(self.viewer, f"{self.base} SIM")
        stack = L.find_layer(self.viewer, f"{self.base} SIM all planes")
        single = (sr, [np.asarray(sr.data), self.prepared.widefield]) if sr is not None and \
            self.prepared is not None else None
        whole = (stack, [self.all_planes.images, self.all_planes.widefields]) if stack is not None and \
            self.all_planes is not None else None
        if whole is None or single is None:
            return whole or single
        layers = list(self.viewer.layers)
        if stack.visible and (not sr.visible or layers.index(stack) > layers.index(sr)):
            return whole
        return single

    def export(self, path: str | Path | None = None) -> list[str] | None:
        """Write what is on screen — the reconstruction (current plane or all planes), the widefield,
        the parameters (JSON) and the shown PINN image, σ and residual; asks before overwriting.
        """
        source = self._export_source()
        params_known = self.result is not None or self.all_planes is not None or self.prepared is not None
        if source is None or not params_known:
            notify("error", "nothing to export yet: reconstruct first", self.status)
            return None
        try:
            paths = export_paths(path if path else str(self.controls.export_path.value))
        except SimInputError as exc:
            notify("error", str(exc), self.status)
            return None
        learned = learned_exports(self.viewer, self.base, paths[0])
        existing = [p for p in paths + [p for p, _ in learned] if p.exists()]
        if existing and not self._confirm_overwrite(existing):
            notify("info", "export cancelled; no file was changed")
            return None
        layer, images = source
        estimate = self.result if self.result is not None else \
            getattr(getattr(self.all_planes, "estimate", None), "result", None)  # None: loaded parameters
        try:
            write_export(paths, layer, images, estimate.diagnostics if estimate is not None else [])
            write_layers(learned)
        except SimInputError as exc:
            notify("error", f"export failed: {exc}", self.status)
            return None
        written = paths + [p for p, _ in learned]
        notify("info", f"exported {', '.join(p.name for p in written)} to {paths[0].parent}")
        return [str(p) for p in written]
