"""The "Learned reconstruction" panel: fit the untrained PINN in a worker.

The panel lives in the SIM dock and asks it for the current inputs (raw frames,
layout, optics, estimated parameters). The fit runs in a napari generator worker
with napari's progress bar; every few steps a preview layer is updated in place and
the loss is shown; Cancel stops it at the next step, which closes the engine's
generator and frees the network. Layers are touched only in main-thread callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QWidget

from ..engine.errors import SimInputError
from ..engine.metadata import ImageOptics, SimMetadata
from ..engine.parameters import PatternParameters
from ..engine.pinn.types import MODES, PinnSettings
from ..session.learned import run_pinn
from ..session.tasks import Failure, Job
from . import _layers as L
from ._controls import run_panel
from ._workers import WorkerSlot

Context = Callable[[], tuple[Job, PatternParameters | None, str]]
__all__ = ["LearnedPanel", "run_pinn"]


class LearnedPanel(QWidget):
    """Mode, iterations, TV weight, uncertainty samples, device, seed; Run / Cancel."""

    def __init__(self, viewer: Any, context: Context, session: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.context, self.session = viewer, context, session
        self.mode = ComboBox(label="PINN mode", choices=list(MODES), value=PinnSettings().mode)
        self.iterations = SpinBox(label="max iterations", min=1, max=5000, value=150)
        self.tv_weight = FloatSpinBox(label="TV weight", min=0.0, max=100.0, step=0.1, value=0.5)
        self.samples = ComboBox(label="uncertainty samples", choices=[0, 2, 4, 8, 16], value=4,
                                tooltip="bootstrap continuations for the σ map (0: none)")
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=0)
        self.run_button, self.cancel_button, self.status = run_panel(
            self, "Learned reconstruction (untrained PINN)",
            [self.mode, self.iterations, self.tv_weight, self.samples, self.device, self.seed],
            "Fit PINN", "Cancel PINN")
        self.slot = WorkerSlot("a PINN fit is already running; wait for it or press Cancel PINN",
                               "the PINN fit failed", self.run_button, self.cancel_button)
        self.base = ""
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)

    @property
    def worker(self) -> Any:
        """The running fit's worker, or None."""
        return self.slot.worker

    def settings(self) -> Any:
        """Build the PINN settings the fields give."""
        from ..engine.methods import pinn_settings
        from ..engine.pinn import PinnSettings

        common = pinn_settings(self.mode.value, int(self.seed.value), int(self.iterations.value),
                               int(self.samples.value))
        return PinnSettings(**common, tv_weight=float(self.tv_weight.value), device=self.device.value,
                            preview_every=10)

    def run(self) -> Any:
        """Start a fit; returns the worker (or None after a notification)."""
        if self.slot.refuse():
            return None
        try:
            job, params, base = self.context()
            if params is None:
                raise SimInputError("estimate the pattern first (Estimate), or open a file with parameters; "
                                    "the PINN needs the illumination")
            settings = self.settings()
        except SimInputError as exc:
            show_error(str(exc))
            return None
        self.base = base
        if self.session is not None:
            self.session.pinn = settings  # drops an earlier PINN result
        version = self.session.version if self.session is not None else 0
        self.status.setText("PINN: starting…")
        return self.slot.start(run_pinn, job, params, settings,
                               yielded=lambda progress: self._on_progress(progress, job),
                               returned=lambda result: self._on_result(result, job, params, version, settings),
                               aborted=lambda: show_info("PINN fit cancelled"),
                               progress={"total": settings.max_steps, "desc": "PINN fit"})

    def cancel(self) -> None:
        """Stop the fit at its next step."""
        if self.slot.quit():
            self.status.setText("PINN: cancelling…")

    # ------------------------------------------------------------ main-thread callbacks
    def _geometry(self, fine: bool) -> dict[str, Any]:
        layer = L.find_layer(self.viewer, self.base)
        if layer is None:
            return {"scale": (1.0, 1.0), "translate": (0.0, 0.0), "units": ("pixel", "pixel")}
        return L.fine_geometry(layer) if fine else L.raw_geometry(layer)

    def _on_progress(self, progress: Any, job: Job) -> None:
        self.status.setText(f"PINN: step {progress.step}/{progress.total}, loss {progress.loss:.4g}")
        if progress.preview is not None:
            L.upsert_image(self.viewer, f"{self.base} PINN preview", progress.preview, self._geometry(True),
                           {"kind": "pinn-preview", "source_layer": self.base}, colormap="gray")

    def _on_result(self, result: Any, job: Job, params: PatternParameters, version: int | None = None,
                   settings: Any = None) -> None:
        if isinstance(result, Failure):
            show_error(result.message)
            self.status.setText(f"PINN: {result.message}")
            return
        if self.session is not None and (version is None or self.session.is_current(version)):
            self.session.pinn_result = result
        L.replace_layer(self.viewer, f"{self.base} PINN preview")
        optics = job.optics  # the schema (engine.metadata): the run's facts in its pinn block, as the CLI writes them
        asked = {"mode": settings.mode, "seed": settings.seed, "iterations": settings.iterations} if settings else {}
        run = {**asked, "iterations_run": result.iterations, "device": result.device, "seconds": result.seconds}
        meta = {**SimMetadata(kind="reconstruction", method="pinn", source_layer=self.base,
                              optics=ImageOptics.from_optics(optics, optics.pixel_size_um / 2),
                              raw_pixel_size_um=optics.pixel_size_um, params=params.to_dict(optics),
                              layout=asdict(job.layout), background=job.background, plane=job.plane,
                              pinn=run).to_dict(),
                "iterations": result.iterations, "seconds": result.seconds, "device": result.device}  # older keys

        fine = self._geometry(True)
        L.upsert_image(self.viewer, f"{self.base} PINN", result.image, fine, meta, colormap="gray")
        maps = []
        if result.sigma is not None:
            maps.append(L.upsert_image(self.viewer, f"{self.base} PINN uncertainty σ", result.sigma, fine,
                                       {**meta, "kind": "uncertainty"}, colormap="magma", visible=False))
        maps.append(L.upsert_image(self.viewer, f"{self.base} PINN residual", result.residual,
                                   self._geometry(False), {**meta, "kind": "residual"},
                                   colormap="twilight_shifted", visible=False))
        for layer in maps:  # quantitative maps: their values are read off a colour bar
            if layer is not None and hasattr(layer, "colorbar"):
                layer.colorbar.visible = True
        self.status.setText(f"PINN: {result.iterations} steps in {result.seconds:.1f} s on {result.device}"
                            + (" (stopped early)" if result.stopped_early else ""))
