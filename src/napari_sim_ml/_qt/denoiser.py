"""The "Trained denoiser" panel: train a raw-frame denoiser in a worker, apply it before Reconstruct.

Training runs in a napari generator worker; every step the worker yields a typed
:class:`~napari_sim_ml.engine.denoise.train.TrainProgress`, drawn as a live loss curve on the
main thread; Cancel sets an event that the worker checks between steps (the engine's generator
is then closed, which writes the checkpoint). With "Apply denoiser before Reconstruct" ticked,
the dock's Reconstruct also denoises the current plane, reconstructs it with the dock's Wiener
settings and adds layers for the denoised frames, their reconstruction and the data-consistency
flags. With "Apply step 2 (may distort structures)" ticked, Reconstruct also applies the step-2
model (trained here with the training data "step 2: …", on simulated reconstructions made with
the dock's Wiener settings, or with ``train-denoiser --step 2``) to the current plane's reconstruction (the
denoised one when step 1 is ticked too), shows the literature's warning as a notification and
adds the step-2 output as a layer of its own beside the plain reconstruction (never replacing
it), with the flags of its re-imaging check. Layers are touched only in main-thread callbacks.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, PushButton, SpinBox
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine.denoise.step2 import WARNING_TEXT as STEP2_WARNING
from ..engine.denoise.train import TrainSettings
from ..engine.errors import SimInputError
from ..engine.parameters import FilterSettings, PatternParameters
from ..session.learned import Cancelled, Step2Output, TrainRequest, run_apply, run_step2, run_training
from ..session.tasks import Failure, Job
from . import _layers as L
from ._workers import WorkerSlot

Context = Callable[[], tuple[Job, PatternParameters | None, str]]
STEP2_SOURCE = "step 2: simulated reconstructions (may distort structures)"
__all__ = ["DenoiserPanel", "LossCurve", "run_apply", "run_step2", "run_training"]


class LossCurve(QWidget):
    """Training (grey) and validation (blue) loss against step, log scale, drawn with QPainter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def clear(self) -> None:
        self.train, self.val = [], []
        self.update()

    def add(self, step: int, loss: float, val: float | None) -> None:
        if loss > 0 and math.isfinite(loss):
            self.train.append((step, loss))
        if val is not None and val > 0:
            self.val.append((step, val))
        self.update()

    def paintEvent(self, _event: Any) -> None:  # Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        pts = self.train + self.val
        if len(pts) >= 2:
            w, h = self.width() - 4, self.height() - 4
            s_max = max(s for s, _ in pts) or 1
            lo, hi = math.log(min(v for _, v in pts)), math.log(max(v for _, v in pts))
            span = (hi - lo) or 1.0
            for series, colour in ((self.train, Qt.GlobalColor.gray), (self.val, Qt.GlobalColor.cyan)):
                poly = QPolygonF([QPointF(2 + w * s / s_max, 2 + h * (hi - math.log(v)) / span) for s, v in series])
                p.setPen(QPen(colour, 1.5))
                p.drawPolyline(poly)
        p.end()


class DenoiserPanel(QWidget):
    """Source, structures, photons, epochs, model file; Train / Cancel; apply before Reconstruct."""

    def __init__(self, viewer: Any, context: Context, filter_settings: Callable[[], FilterSettings],
                 session: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.context, self.filter_settings = viewer, context, filter_settings
        self.session = session
        self.source = ComboBox(label="training data", choices=["simulation", "this layer (thinning)", STEP2_SOURCE],
                               value="simulation")
        self.structures = LineEdit(label="structures", value="filaments,rings,mesh")
        self.photons = FloatSpinBox(label="photons", min=1.0, max=1e5, value=60.0,
                                    tooltip="simulation: peak photons (trained from ÷2 to ×2)")
        self.thin = FloatSpinBox(label="thinning S", min=1.0, max=1000.0, value=20.0)
        self.epochs = SpinBox(label="epochs", min=1, max=10000, value=TrainSettings().epochs)
        self.steps = SpinBox(label="steps / epoch", min=1, max=10000, value=TrainSettings().steps_per_epoch)
        self.model = FileEdit(label="model file", mode=FileDialogMode.OPTIONAL_FILE, filter="*.pt",
                              value=Path.home() / "napari-sim-ml-denoiser.pt")
        self.overwrite = CheckBox(text="replace an existing model file", value=False)
        self.train_button = PushButton(text="Train denoiser")
        self.cancel_button = PushButton(text="Cancel training", enabled=False)
        self.apply = CheckBox(text="Apply denoiser before Reconstruct", value=False)
        self.step2_model = FileEdit(label="step-2 model", mode=FileDialogMode.OPTIONAL_FILE, filter="*.pt",
                                    value=Path.home() / "napari-sim-ml-step2.pt",
                                    tooltip="a denoiser of the reconstruction: trained here (training data "
                                            "'step 2: …') or with train-denoiser --step 2")
        self.step2 = CheckBox(text="Apply step 2 (may distort structures)", value=False, tooltip=STEP2_WARNING)
        box = Container(widgets=[self.source, self.structures, self.photons, self.thin, self.epochs, self.steps,
                                 self.model, self.overwrite, self.train_button, self.cancel_button, self.apply,
                                 self.step2_model, self.step2])
        self.curve = LossCurve()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Trained denoiser (raw frames)</b>"))
        layout.addWidget(box.native)
        layout.addWidget(self.curve)
        layout.addWidget(self.status)
        self.training = WorkerSlot("a denoiser is already training; wait for it or press Cancel training",
                                   "denoiser training failed", self.train_button, self.cancel_button)
        self.applying = WorkerSlot(None, "denoising failed")
        self._stop = threading.Event()
        self.train_button.changed.connect(lambda _value=None: self.train())
        self.cancel_button.changed.connect(self.cancel)

    @property
    def worker(self) -> Any:
        """The training worker, or None."""
        return self.training.worker

    @property
    def apply_worker(self) -> Any:
        """The worker denoising the current plane, or None."""
        return self.applying.worker

    @property
    def busy(self) -> bool:
        """Whether training or denoising runs."""
        return self.training.busy or self.applying.busy

    def _request(self, patch: int = 64, width: int | None = None, depth: int | None = None) -> TrainRequest:
        from ..engine.denoise.train import TrainSettings

        step2 = self.source.value == STEP2_SOURCE
        path = str(self.step2_model.value if step2 else self.model.value)
        if not path or Path(path).is_dir():
            raise SimInputError("choose a model file to train into")
        if Path(path).exists() and not self.overwrite.value:
            raise SimInputError(f"{Path(path).name} exists; tick 'replace an existing model file' or choose another")
        p = float(self.photons.value)
        structures = tuple(s.strip() for s in str(self.structures.value).split(",") if s.strip())
        settings = TrainSettings(epochs=int(self.epochs.value), steps_per_epoch=int(self.steps.value), patch=patch,
                                 width=width, depth=depth)
        source = "step2" if step2 else "simulation" if self.source.value == "simulation" else "thinning"
        return TrainRequest(source, structures, (p / 2, p * 2), float(self.thin.value), 48, settings, path,
                            self.filter_settings() if step2 else None)

    def train(self, patch: int = 64, width: int | None = None, depth: int | None = None) -> Any:
        """Start training; returns the worker (or None after a notification)."""
        if self.training.refuse():
            return None
        try:
            job, params, _ = self.context()
            if params is None:
                raise SimInputError("estimate the pattern first (Estimate): the denoiser is trained for it")
            req = self._request(patch if isinstance(patch, int) else 64, width, depth)
        except SimInputError as exc:
            show_error(str(exc))
            return None
        if req.source == "step2":
            show_warning(STEP2_WARNING[0].upper() + STEP2_WARNING[1:])
        self._stop = threading.Event()
        total = req.settings.epochs * req.settings.steps_per_epoch
        self.curve.clear()
        self.status.setText("denoiser: preparing the training data…")
        return self.training.start(run_training, job, params, req, self._stop, yielded=self._on_progress,
                                   returned=self._on_trained,
                                   progress={"total": total, "desc": "denoiser training"})

    def cancel(self) -> None:
        """Stop training between steps (the checkpoint is written)."""
        if self.worker is not None:
            self._stop.set()
            self.status.setText("denoiser: cancelling (the checkpoint is kept)…")

    def on_reconstruct(self, _value: Any = None) -> Any:
        """On Reconstruct: denoise and reconstruct the current plane ('Apply denoiser'), then step 2 if ticked."""
        if not (self.apply.value or self.step2.value) or self.applying.refuse():
            return None
        try:
            job, params, base = self.context()
            if params is None:
                raise SimInputError("estimate the pattern first: the denoiser is checked against it")
            model = str(self.model.value)
            if self.apply.value and not Path(model).is_file():
                raise SimInputError(f"no denoiser model at {model}; train one or choose its file")
            step2 = str(self.step2_model.value) if self.step2.value else None
            if step2 is not None and not Path(step2).is_file():
                raise SimInputError(f"no step-2 model at {step2}; train one with train-denoiser --step 2")
        except SimInputError as exc:
            show_error(str(exc))
            return None
        if step2 is not None:
            show_warning(STEP2_WARNING[0].upper() + STEP2_WARNING[1:])
        if not self.apply.value:
            self.status.setText("step 2: applying it to the current plane's reconstruction…")
            return self.applying.start(run_step2, job, params, step2, self.filter_settings(),
                                       returned=lambda out: self._on_step2(out, base, f"{base} SIM step 2"))
        self.status.setText("denoiser: denoising the current plane…")
        return self.applying.start(run_apply, job, params, model, self.filter_settings(), step2,
                                   returned=lambda out: self._on_applied(out, base))

    # ------------------------------------------------------------ main-thread callbacks
    def _on_progress(self, p: Any) -> None:
        self.curve.add(p.step, p.loss, p.val_loss)
        self.status.setText(f"denoiser: step {p.step}/{p.total}, loss {p.loss:.3f}"
                            + (f", validation {p.val_loss:.3f}" if p.val_loss is not None else "")
                            + f", {p.seconds:.0f} s")

    def _on_trained(self, result: Any) -> None:
        if isinstance(result, Failure):
            show_error(result.message)
            self.status.setText(f"denoiser: {result.message}")
        elif isinstance(result, Cancelled):
            show_info(f"denoiser training cancelled; the checkpoint {Path(result.path).name} is kept")
            self.status.setText("denoiser: cancelled")
        else:
            self.status.setText(f"denoiser: {result.steps} steps in {result.seconds:.0f} s on {result.device}, "
                                f"validation loss {result.val_losses[0]:.3f} → {result.val_losses[-1]:.3f}; "
                                f"wrote {Path(str(result.path)).name}")

    def _on_applied(self, out: Any, base: str) -> None:
        if isinstance(out, Failure):
            show_error(out.message)
            self.status.setText(f"denoiser: {out.message}")
            return
        if self.session is not None and self.session.base == base:
            self.session.denoised = out
        layer = L.find_layer(self.viewer, base)
        raw = L.raw_geometry(layer) if layer is not None else {"scale": (1.0, 1.0), "translate": (0.0, 0.0),
                                                                "units": ("pixel", "pixel")}
        fine = L.fine_geometry(layer) if layer is not None else raw
        meta = {"kind": "denoised", "source_layer": base, "model": str(self.model.value), "consistency": out.summary}
        L.upsert_image(self.viewer, f"{base} denoised", out.denoised, L.stack_geometry(raw), meta, colormap="gray")
        L.upsert_image(self.viewer, f"{base} denoised SIM", out.image, fine, {**meta, "kind": "reconstruction"},
                       colormap="gray")
        L.upsert_image(self.viewer, f"{base} denoiser flags", out.flags.astype(np.float32), raw,
                       {**meta, "kind": "consistency-flags"}, colormap="red", visible=False, opacity=0.5)
        self.status.setText(f"denoiser: {out.summary}")
        if out.step2 is not None:
            self._on_step2(out.step2, base, f"{base} denoised SIM step 2", after_step1=True)

    def _on_step2(self, out: Step2Output | Failure, base: str, name: str, after_step1: bool = False) -> None:
        """Add the step-2 output as its own layer (the plain reconstruction stays) and its check's flags."""
        if isinstance(out, Failure):
            show_error(out.message)
            self.status.setText(f"step 2: {out.message}")
            return
        layer = L.find_layer(self.viewer, base)
        raw = L.raw_geometry(layer) if layer is not None else {"scale": (1.0, 1.0), "translate": (0.0, 0.0),
                                                                "units": ("pixel", "pixel")}
        fine = L.fine_geometry(layer) if layer is not None else raw
        meta = {"kind": "reconstruction", "source_layer": base, "step2": {
            "model": str(self.step2_model.value), "after_step1": after_step1, "check": out.summary,
            "warning": "step 2 can distort true structures"}}
        L.upsert_image(self.viewer, name, out.image, fine, meta, colormap="gray")
        L.upsert_image(self.viewer, f"{name} flags", out.flags.astype(np.float32), raw,
                       {**meta, "kind": "consistency-flags"}, colormap="red", visible=False, opacity=0.5)
        text = f"step 2 (may distort structures): {out.summary}"
        self.status.setText(text + "".join(f"; {n}" for n in out.notes))
