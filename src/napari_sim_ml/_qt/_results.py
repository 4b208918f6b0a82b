"""The session's results on screen (main thread): the table, the status line and the output layers.

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
from napari.utils.notifications import show_warning

from . import _layers as L
from ._planes import plane_words
from ._table import fill_table


class ResultView:
    """Show ``session``'s results in ``viewer``, ``table`` and ``status``.

    ``filter_settings`` gives the sliders' settings (for the layers' metadata);
    ``on_image`` is called with each re-filtered image shown (e.g. to recompute its spectrum).
    """

    def __init__(self, viewer: Any, session: Any, table: Any, status: Any,
                 filter_settings: Callable[[], Any], on_image: Callable[[np.ndarray], None]) -> None:
        self.viewer, self.session, self.table, self.status = viewer, session, table, status
        self.filter_settings, self.on_image = filter_settings, on_image
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
        """Show a new estimate (table, status, spectra), or empty the table when it is dropped."""
        if out is None:
            self.table.setRowCount(0)
            return
        fill_table(self.table, out.result)
        grades = ", ".join(d.grade for d in out.result.diagnostics)
        self.status.setText(f"pattern quality: {grades}")
        if any(d.grade in ("inadequate", "low") for d in out.result.diagnostics):
            show_warning("the pattern quality of at least one angle is low; check the highlighted rows")
        layer = L.find_layer(self.viewer, self.base)
        if layer is not None:
            L.show_estimate(self.viewer, self.base, out, self.session.optics, L.raw_geometry(layer),
                            out.result.params.n_orders)

    def show_reconstruction(self, out: Any) -> None:
        """Place a new plane result: widefield, SIM and its spectrum (in place when they exist)."""
        layer = L.find_layer(self.viewer, self.base)
        job = self.session.job
        if out is None or layer is None or job is None:
            return
        geometry = L.fine_geometry(layer)
        L.hide_estimate_layers(self.viewer, self.base)
        L.upsert_image(self.viewer, f"{self.base} widefield", out.widefield, geometry,
                       self.meta(job, "widefield", out.prepared.params), colormap="gray")
        L.upsert_image(self.viewer, f"{self.base} SIM spectrum", out.spectrum, geometry,
                       {"kind": "spectrum", "source_layer": self.base}, colormap="inferno", visible=False)
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
        layer = L.find_layer(self.viewer, f"{self.base} SIM spectrum")
        if layer is not None and isinstance(spectrum, np.ndarray):
            L.update_data(layer, spectrum)
