"""The magicgui input widgets of the dock, grouped, with the settings that persist."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    FloatSpinBox,
    LogSlider,
    PushButton,
    SpinBox,
)
from magicgui.widgets.bases import Widget
from qtpy.QtWidgets import QAbstractSpinBox, QLabel, QVBoxLayout, QWidget

from ..engine.io import ANGLE_RANGE
from ..engine.parameters import FilterSettings
from ..engine.pipeline import OTF_CHOICES
from ..engine.simulate import DEFAULT_OPTICS

ORDERS = ("PAZ", "APZ", "PZA", "ZAP", "AZP", "ZPA")
# values that belong to a dataset: taken from each file, reset to these when a file does not state
# them (and marked so), never persisted between files or sessions
DATASET_DEFAULTS = {"na": DEFAULT_OPTICS.na, "wavelength_nm": DEFAULT_OPTICS.wavelength_nm,
                    "pixel_size_um": DEFAULT_OPTICS.pixel_size_um, "background": 0.0}
NOT_FROM_FILE = " (default: not in the file)"


class Controls:
    """All input widgets; ``persisted`` maps a settings key to its widget."""

    def __init__(self, layer_choices: Callable[[Any], list[str]]) -> None:
        self.layer = ComboBox(label="raw layer", choices=layer_choices,
                              tooltip="image layer holding the raw frames (angles × phases [× z/time])")
        self.na = FloatSpinBox(label="NA", value=DATASET_DEFAULTS["na"], min=0.1, max=1.7, step=0.01)
        self.wavelength_nm = FloatSpinBox(label="emission λ (nm)", value=DATASET_DEFAULTS["wavelength_nm"],
                                          min=200.0, max=1500.0, step=1.0)
        self.pixel_size_um = FloatSpinBox(label="pixel size (µm)", value=DATASET_DEFAULTS["pixel_size_um"],
                                          min=0.001, max=10.0, step=0.001)
        self.angles = SpinBox(label="angles", value=3, min=ANGLE_RANGE[0], max=ANGLE_RANGE[1])
        self.phases = SpinBox(label="phases", value=3, min=3, max=9)
        self.n_z = SpinBox(label="z planes", value=1, min=1, max=10000)
        self.order = ComboBox(label="frame order", choices=ORDERS, value="PAZ",
                              tooltip="fastest axis first: PAZ = angle-major a0p0 a0p1 …, APZ = phase-major")
        self.background = FloatSpinBox(label="camera offset", value=0.0, min=0.0, max=65535.0, step=1.0)
        self.otf = ComboBox(label="OTF", choices=OTF_CHOICES, value="ideal")
        self.otf_attenuation = FloatSpinBox(label="OTF attenuation a", value=0.3, min=0.01, max=1.0, step=0.01)
        self.otf_file = FileEdit(label="OTF/PSF file", mode=FileDialogMode.EXISTING_FILE,
                                  filter="*.tif *.tiff *.mrc *.dv *.otf")
        self.load_params = PushButton(text="Load parameters…",
                                      tooltip="use a parameters JSON (as `napari-sim-ml estimate --json` writes it) "
                                              "instead of estimating; Estimate drops it again")
        self.keep_k = CheckBox(text="keep k, refit phases", value=False, enabled=False,
                               tooltip="with loaded parameters: keep their k (and angles), refit the phases and "
                                       "modulation on these frames (calibration reuse; Estimate refits)")
        self.time_mean = CheckBox(text="estimate on the time mean", value=False, visible=False,
                                  tooltip="estimate the pattern on the mean of all time points at the current z "
                                          "(more photons for a dim time-lapse); every time point is then "
                                          "reconstructed with that pattern")
        self.estimate = PushButton(text="Estimate")
        self.reconstruct = PushButton(text="Reconstruct")
        self.reconstruct_all = PushButton(text="Reconstruct all")
        self.cancel = PushButton(text="Cancel", enabled=False)
        defaults = FilterSettings()
        self.wiener = LogSlider(label="Wiener w", value=defaults.wiener, min=1e-3, max=1.0, base=10,  # type: ignore[call-arg]
                                max_pos=1500, tooltip="Wiener parameter (log scale): larger = smoother, less noise")
        self.wiener.value = defaults.wiener  # magicgui sets the value before max_pos applies
        for readout in self.wiener.native.findChildren(QAbstractSpinBox):
            readout.hide()  # it would show the slider position; the label shows w
        self.apo_cutoff = FloatSlider(label="apod. cutoff", value=defaults.apo_cutoff, min=0.3, max=2.5, step=0.01)
        self.apo_bend = FloatSlider(label="apod. bend", value=defaults.apo_bend, min=0.1, max=2.0, step=0.01)
        self.attenuation = FloatSlider(label="attenuation", value=defaults.attenuation, min=0.0, max=1.0, step=0.01)
        self.attenuation_fwhm = FloatSlider(label="atten. FWHM (1/µm)", value=defaults.attenuation_fwhm,
                                            min=0.1, max=5.0, step=0.05)
        self.export_path = FileEdit(label="export to", mode=FileDialogMode.OPTIONAL_FILE, filter="*.tif")
        self.export = PushButton(text="Export")
        # preferences only: optics, camera offset and frame layout are per dataset (see prefill)
        self.persisted = {
            "otf": self.otf, "otf_attenuation": self.otf_attenuation, "wiener": self.wiener,
            "apo_cutoff": self.apo_cutoff, "apo_bend": self.apo_bend, "attenuation": self.attenuation,
            "attenuation_fwhm": self.attenuation_fwhm, "export_path": self.export_path,
        }
        self._labels = {k: getattr(self, k).label for k in DATASET_DEFAULTS}
        self.inputs = [self.layer, self.na, self.wavelength_nm, self.pixel_size_um, self.angles, self.phases,
                       self.n_z, self.order, self.background, self.otf, self.otf_attenuation, self.otf_file]
        self.sliders = [self.wiener, self.apo_cutoff, self.apo_bend, self.attenuation, self.attenuation_fwhm]
        self.pattern_row = Container(widgets=[self.load_params, self.keep_k, self.time_mean], layout="horizontal",
                                     labels=False)
        self.top = Container(widgets=[*self.inputs, self.pattern_row, Container(
            widgets=[self.estimate, self.reconstruct, self.reconstruct_all, self.cancel],
            layout="horizontal", labels=False)])
        self.bottom = Container(widgets=[*self.sliders, self.export_path, self.export])
        self.otf.changed.connect(self._show_otf_fields)
        self._show_otf_fields(self.otf.value)
        self.wiener.changed.connect(self._show_wiener)
        self._show_wiener(self.wiener.value)

    def _show_wiener(self, _value: Any = None) -> None:
        # the changed signal may carry the slider position; the label shows w itself
        self.wiener.label = f"Wiener w = {float(self.wiener.value):.3g}"

    def mark_source(self, key: str, from_file: bool) -> None:
        """Label a dataset field as taken from the file, or as a default the file did not state."""
        widget = getattr(self, key)
        widget.label = self._labels[key] + ("" if from_file else NOT_FROM_FILE)
        widget.tooltip = "from the file's metadata" if from_file else "the file does not state this value: check it"

    def _show_otf_fields(self, kind: str) -> None:
        self.otf_attenuation.visible = kind == "attenuated"
        self.otf_file.visible = kind == "from file"

    def filter_settings(self) -> FilterSettings:
        return FilterSettings(wiener=float(self.wiener.value), apo_cutoff=float(self.apo_cutoff.value),
                              apo_bend=float(self.apo_bend.value), attenuation=float(self.attenuation.value),
                              attenuation_fwhm=float(self.attenuation_fwhm.value))

    def values(self) -> dict[str, Any]:
        return {k: (str(w.value) if isinstance(w, FileEdit) else w.value) for k, w in self.persisted.items()}

    def restore(self, saved: dict[str, Any]) -> None:
        """Apply saved values; anything out of range or of the wrong type is skipped."""
        for key, widget in self.persisted.items():
            if key not in saved:
                continue
            try:
                widget.value = saved[key]
            except (ValueError, TypeError):
                continue

    def set_busy(self, busy: bool, cancellable: bool = False) -> None:
        for button in (self.estimate, self.reconstruct, self.reconstruct_all, self.export, self.load_params):
            button.enabled = not busy
        self.cancel.enabled = busy and cancellable


# TODO(denoiser.py): DenoiserPanel builds this same layout by hand; it should call run_panel
# (fields up to overwrite, after_buttons=[self.apply], below=[self.curve]).
def run_panel(owner: QWidget, title: str, fields: Sequence[Widget], run_text: str, cancel_text: str,
              after_buttons: Sequence[Widget] = (),
              below: Sequence[QWidget] = ()) -> tuple[PushButton, PushButton, QLabel]:
    """Lay out a learned-method panel on ``owner``; return its (run, cancel) buttons and status line.

    From the top: the bold ``title``, the ``fields`` followed by a run button and a (disabled)
    cancel button and then ``after_buttons`` in one form, the ``below`` Qt widgets (e.g. a
    loss curve), and a word-wrapped status line. The caller connects the buttons and gives
    them to its :class:`~._workers.WorkerSlot`.
    """
    run = PushButton(text=run_text)
    cancel = PushButton(text=cancel_text, enabled=False)
    box = Container(widgets=[*fields, run, cancel, *after_buttons])
    status = QLabel("")
    status.setWordWrap(True)
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(QLabel(f"<b>{title}</b>"))
    layout.addWidget(box.native)
    for widget in below:
        layout.addWidget(widget)
    layout.addWidget(status)
    return run, cancel, status
