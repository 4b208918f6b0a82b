"""The session's results on screen (main thread): table, evidence, status, output layers, spectra.

:class:`ResultView` observes a :class:`~napari_sim_ml.session.SimSession`: a new estimate
fills the table and the spectra, a new plane result places its widefield, SIM and
spectrum layers, a re-filtered image is copied into the SIM layer in place. It holds
no state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from . import _layers as L
from ._notify import notify
from ._planes import plane_words
from ._spectra_view import spectrum_geometry
from ._table import fill_table, show_evidence
from .evidence import grade_summary


class ResultView:
    """Show ``dock.session``'s results: viewer, spectra canvas, the dock's table, evidence and status.

    ``filter_settings`` gives the sliders' settings (for the layers' metadata);
    ``on_image`` is called with each re-filtered image shown (e.g. to recompute its spectrum).
    """

    def __init__(self, dock: Any, filter_settings: Callable[[], Any], on_image: Callable[[np.ndarray], None]) -> None:
        self.dock, self.viewer, self.session = dock, dock.viewer, dock.session
        self.table, self.evidence, self.status, self.spectra = dock.table, dock.evidence, dock.status, dock.spectra
        self.filter_settings, self.on_image = filter_settings, on_image
        session = self.session
        session.events.estimate.connect(self.show_estimate)
        session.events.reconstruction.connect(self.show_reconstruction)
        session.events.image.connect(self.show_image)

    @property
    def base(self) -> str:
        """Name of the raw layer the output layers belong to."""
        return str(self.session.base)

    def meta(self, job: Any, kind: str, params: Any) -> dict[str, Any]:
        """Build the metadata of a Wiener output layer of ``job``."""
        return L.recon_meta(job, kind, params, self.base, self.filter_settings(), self.z_step(job))

    def z_step(self, job: Any) -> float | None:
        """Return the raw layer's z step (µm) when the job's planes are z planes, else None."""
        return L.z_step_of(L.find_layer(self.viewer, job.layer_name), job)

    def show_estimate(self, out: Any) -> None:
        """Show a new estimate (table, evidence, status, spectra), or empty the table when it is dropped."""
        if out is None:
            self.table.setRowCount(0)
            self.evidence.setText("")
            return
        session = self.session
        optics = session.optics
        fill_table(self.table, out.result)
        show_evidence(self.evidence, out.result, optics.pixel_size_um, tuple(session.frames.shape[-2:]))
        summary, doubtful = grade_summary(out.result)
        if session.refits:
            summary = f"k kept from {session.loaded_name}, phases and modulation refitted; {summary}"
            self.evidence.setText(f"k from {session.loaded_name}, phases refitted:\n" + self.evidence.text())
        self.status.setText(summary)  # which angle and why, in full (a notification may be cut off)
        if doubtful:
            notify("warning", "doubtful pattern in at least one angle; see the highlighted rows and the status line")
        if L.find_layer(self.viewer, self.base) is not None and out.raw_spectrum is not None:
            L.show_estimate(self.spectra.ensure(self.dock), self.base, out, optics,
                            spectrum_geometry(out.raw_spectrum.shape, optics.pixel_size_um),
                            out.result.params.n_orders)
            self.spectra.model.reset_view()  # the whole spectrum in view

    def show_reconstruction(self, out: Any) -> None:
        """Place a new plane result: widefield, SIM and its spectrum (in place when they exist)."""
        layer = L.find_layer(self.viewer, self.base)
        job = self.session.job
        if out is None or layer is None or job is None:
            return
        geometry = L.fine_geometry(layer)
        L.hide_estimate_layers(self.spectra.model, self.base)
        L.upsert_image(self.viewer, f"{self.base} widefield", out.widefield, geometry,
                       self.meta(job, "widefield", out.prepared.params), colormap="gray")
        L.upsert_image(self.spectra.ensure(self.dock), f"{self.base} SIM spectrum", out.spectrum,
                       spectrum_geometry(out.spectrum.shape, job.optics.pixel_size_um / 2),
                       {"kind": "spectrum", "source_layer": self.base}, colormap="inferno")
        L.upsert_image(self.viewer, f"{self.base} SIM", out.image, geometry,
                       self.meta(job, "reconstruction", out.prepared.params), colormap="gray")
        words = plane_words(job.layout.n_z, job.n_planes, job.plane)
        self.status.setText("\n".join([f"reconstructed {words}", *out.trust]))

    def show_image(self, image: Any) -> None:
        """Copy a re-filtered image into the SIM layer; the contrast follows."""
        recon = self.session.reconstruction
        layer = L.find_layer(self.viewer, f"{self.base} SIM")
        if image is None or layer is None or (recon is not None and image is recon.image):
            return  # dropped, or the reconstruction's own image (placed with its layers)
        L.update_data(layer, image)
        low, high = np.percentile(image[::4, ::4], (0.1, 99.9))  # the contrast follows the sliders
        if np.isfinite(low) and np.isfinite(high) and high > low:
            layer.contrast_limits = (float(low), float(high))
        layer.metadata.setdefault(L.METADATA_KEY, {})["filter"] = asdict(self.session.filter)
        if self.session.all_planes is not None and \
                L.find_layer(self.viewer, f"{self.base} SIM all planes") is not None:
            self.status.setText("the sliders change the current plane; the all-planes result keeps its settings "
                                "until Reconstruct all runs again")
        self.on_image(image)

    def show_spectrum(self, spectrum: Any) -> None:
        """Update the SIM spectrum layer in place."""
        layer = L.find_layer(self.spectra.model, f"{self.base} SIM spectrum")
        if layer is not None and isinstance(spectrum, np.ndarray):
            L.update_data(layer, spectrum)
