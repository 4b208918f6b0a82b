"""Truth-free figures of one reconstruction, with the warnings a user must see.

``truth_free_report`` bundles the measures of ``metrics``: pattern imprint of the output, its
border cross, the noise-normalised residual of the raw frames against a forward model, and the
decorrelation resolution; ``TrustReport.lines`` formats them for the command line and the dock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SimInputError
from .metrics import (
    CROSS_WARN_DB,
    CrossScore,
    ImprintScore,
    ResidualStats,
    border_cross,
    decorrelation_resolution,
    noise_variance_out_of_band,
    normalised_residual_stats,
    pattern_imprint,
    sim_forward_model,
    trust_warnings,
)
from .otf import RadialOTF
from .parameters import Optics, PatternParameters

IMPRINT_CLEAN_DB = 6.0  # a clean reconstruction's pattern imprint stays below about this (metrics warns above 12)


@dataclass(frozen=True)
class TrustReport:
    """The truth-free checks of one reconstruction.

    imprint, cross: of the output; residual: of the frames (None when the noise cannot be
    measured); resolution_um: decorrelation; warnings: one sentence per failed check.
    """

    imprint: ImprintScore
    cross: CrossScore
    residual: ResidualStats | None
    resolution_um: float
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        """Return the report as lines for a terminal or a status bar."""
        res = self.residual
        out = [f"pattern imprint {self.imprint.worst_db:.1f} dB (worst of ±k"
               f"{', ±2k' if len(self.imprint.peaks_db) > 3 else ''}; clean ≲ {IMPRINT_CLEAN_DB:g}), border cross "
               f"{self.cross.worst_db:.1f} dB (clean ≲ {CROSS_WARN_DB:g}), decorrelation resolution "
               f"{self.resolution_um * 1e3:.0f} nm"]
        if res is not None:
            out.append(f"normalised residual mean {res.mean:+.2f}, variance {res.variance:.2f} (1 = noise only), "
                       f"pattern in the residual {res.worst_imprint_db:.1f} dB")
        return out


def truth_free_report(image: np.ndarray, plane: np.ndarray, optics: Optics, params: PatternParameters,
                      otf: RadialOTF | None = None, background: float = 0.0, model: np.ndarray | None = None,
                      residual_warns: bool = False, noise_variance: float | np.ndarray | None = None) -> TrustReport:
    """Truth-free figures of ``image`` (2Y, 2X), reconstructed from ``plane`` (A, P, Y, X).

    model: the frames (A, P, Y, X) the method predicts (a PINN's own forward model); None builds
    them from ``image`` (``metrics.sim_forward_model``, gain and offset fitted per frame). A linear
    filter's output is not a data-consistent object (the Wiener shrinks low frequencies), so its
    residual is reported but only warns with ``residual_warns``. noise_variance: per-pixel variance
    of a frame (e.g. ``PreparedReconstruction.frame_noise_variance``, measured inside the OTF); None
    measures it beyond the OTF (``metrics.noise_variance_out_of_band``).
    """
    px = optics.pixel_size_um / 2
    imprint = pattern_imprint(image, px, params)
    cross = border_cross(image, px)
    data = np.asarray(plane, dtype=np.float64) - background
    try:
        var = noise_variance_out_of_band(data, optics) if noise_variance is None else noise_variance
        if not np.all(np.isfinite(var)) or np.any(np.asarray(var) <= 0):
            raise SimInputError("no usable noise estimate")
    except SimInputError:  # no frequencies beyond the OTF on this grid: no residual figures
        residual = None
    else:
        frames = model if model is not None else sim_forward_model(image, optics, params, otf)
        residual = normalised_residual_stats(data, frames, params, optics.pixel_size_um, var,
                                             fit_gain=model is None)
    warnings = trust_warnings(imprint, cross, residual if residual_warns else None)
    return TrustReport(imprint, cross, residual, decorrelation_resolution(image, px), tuple(warnings))
