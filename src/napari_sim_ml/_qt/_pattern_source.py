"""The dock's loaded parameters (main thread).

Load parameters…, which pattern a run uses, and the time-mean option's visibility; kept out
of sim_widget.py, the dock calls these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engine.errors import SimInputError
from ..session.estimation import load_for_job, loaded_result, n_time_points
from ._layers import find_layer
from ._notify import notify
from ._table import fill_table, show_evidence


class PatternSource:
    """Loaded parameters (a PatternParameters and its file name), or none.

    Loaded parameters stay across layers and inputs (the point of a calibration is to reuse it on
    other data) until another file is loaded or Estimate is pressed without "keep k".
    """

    def __init__(self, session: Any) -> None:
        self.session = session  # the loaded parameters are the session's input ``loaded``

    @property
    def params(self) -> Any:
        """The loaded PatternParameters, or None."""
        return self.session.loaded

    @property
    def name(self) -> str:
        """The loaded file's name."""
        return str(self.session.loaded_name)

    def clear(self, controls: Any = None) -> None:
        """Forget the loaded parameters ("keep k" is then off and disabled)."""
        self.session.load(None, "")
        if controls is not None:
            controls.keep_k.value = False
            controls.keep_k.enabled = False

    def refits(self, controls: Any) -> bool:
        """Tell whether runs keep the loaded k and refit the phases."""
        return self.params is not None and bool(controls.keep_k.value)

    def load(self, dock: Any, path: str | Path | None = None) -> bool:
        """Load a parameters JSON for the dock's current inputs; True when it was taken.

        Without ``path`` a file dialog asks. A bad file, values out of range or a layout that
        does not match: one sentence in the status line and a notification, nothing changed.
        """
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            chosen, _ = QFileDialog.getOpenFileName(dock, "Load SIM parameters", "", "Parameters JSON (*.json)")
            if not chosen:
                return False
            path = chosen
        job = dock._job_or_notify()
        if job is None:
            return False
        try:
            params, note = load_for_job(path, job)
        except SimInputError as exc:
            notify("error", f"parameters not loaded: {exc}", dock.status)
            return False
        self.session.load(params, Path(path).name)
        dock.controls.keep_k.enabled = True
        dock._invalidate()
        self.show(dock, job.optics.pixel_size_um, job.frames.shape[-2:])
        text = (f"loaded {self.name}: Reconstruct uses these parameters as they are, or with 'keep k, refit "
                "phases' their k with phases refitted on these frames (Estimate refits; without it, Estimate drops "
                "them)")
        dock.status.setText(text + (f"; {note}" if note else ""))
        notify("info", f"loaded {self.name}")
        return True

    def show(self, dock: Any, pixel_size_um: float, shape: tuple[int, ...]) -> None:
        """Put the loaded parameters into the dock's table and evidence label."""
        if self.params is not None:
            result = loaded_result(self.params)
            fill_table(dock.table, result)
            show_evidence(dock.evidence, result, pixel_size_um, shape)
            dock.evidence.setText(f"from {self.name}:\n" + dock.evidence.text())

    def for_run(self, dock: Any, job: Any) -> Any:
        """Return the PatternParameters a reconstruction of ``job`` uses.

        The estimate of these inputs, else the loaded parameters (checked against the job),
        else None (the worker estimates).
        """
        return self.session.params_for_run(job)  # refitted: None, the worker does it (job.known)


def update_time_mean(controls: Any, viewer: Any) -> None:
    """Show "estimate on the time mean" only when the selected stack has more than one time point."""
    layer = find_layer(viewer, controls.layer.value)
    n_t = 0
    if layer is not None and getattr(layer, "ndim", 0) >= 3:
        n_frames = 1
        for n in layer.data.shape[:-2]:
            n_frames *= int(n)
        n_t = n_time_points(n_frames, controls.angles.value, controls.phases.value, controls.n_z.value)
    controls.time_mean.visible = n_t > 1
    if n_t <= 1:
        controls.time_mean.value = False


def apply_typed(dock: Any, item: Any) -> bool:
    """Take a value typed into the table (main thread); True when it was taken.

    The parameters shown (estimated or loaded) with that cell changed become the dock's
    pattern: Reconstruct uses them. A value that is not a number or out of its physical range
    is refused in one sentence (notification and status line) and the cell is put back.
    """
    from ..engine.parameters import Optics
    from .typed import edit_parameters, typed_result

    c = dock.controls
    base = dock.result if dock.result is not None else (
        loaded_result(dock.pattern.params) if dock.pattern.params is not None else None)
    if base is None:
        return False
    row, column = item.row(), item.column()
    try:
        optics = Optics(float(c.na.value), float(c.wavelength_nm.value), float(c.pixel_size_um.value))
        params = edit_parameters(base.params, row, column, item.text(), optics)
    except SimInputError as exc:
        notify("error", f"angle {row} not changed: {exc}", dock.status)
        fill_table(dock.table, base)  # the cell shows the value in use again
        return False
    dock.result = typed_result(base, params, row)
    fill_table(dock.table, dock.result)
    show_evidence(dock.evidence, dock.result, optics.pixel_size_um, dock._frame_shape())
    dock.status.setText(f"angle {row}: the typed value is used from the next Reconstruct")
    return True
