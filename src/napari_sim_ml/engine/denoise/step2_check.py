"""Data-consistency check of a step-2 output: re-imaged through the band model, against the frames.

A step-2 model is trained to return the SIM-passband truth: the object seen through a transfer
``T(f) = ideal_profile(|f| / (kc + k_top))`` (:func:`..metrics.sim_passband_truth`). Dividing
by T inside its support (Tikhonov-regularised, ``eps``) gives an object estimate whose forward
model (:func:`..metrics.sim_forward_model`: object × each illumination pattern, blurred by the
OTF and the pixel, sampled on the camera grid; gain and offset fitted per frame by least squares)
predicts every measured frame. If step 2 kept the true structure and removed noise, the
residual of the measured frames against that prediction, normalised by the camera noise model,
is white noise (mean 0, variance ≈ 1); a moved, shortened, invented or erased structure leaves a
residual common to all frames (flagged per pixel), and an error in the super-resolved content
leaves it at the pattern's k. The statistics and flags are those of the step-1 check
(:func:`.check.consistency_check`).

For comparison the same figures are given for the plain reconstruction only when it is an
object estimate; a Wiener output is not (it shrinks the low frequencies), so the figure that
matters is the step-2 output's own variance against 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..metrics import sim_forward_model
from ..otf import RadialOTF, ideal_profile
from ..parameters import Optics, PatternParameters
from .check import ConsistencyReport, consistency_check


@dataclass(frozen=True)
class Step2Check:
    """The re-imaging check of one step-2 output.

    report: the consistency report of the measured frames against the re-imaged output (mean,
    variance, flags per camera pixel, power at k). gain, var0: the noise model used (counts per
    photon, counts²). model: (A, P, Y, X) the predicted frames (counts, background added).
    """

    report: ConsistencyReport
    gain: float
    var0: float
    model: np.ndarray

    def summary(self) -> str:
        """One line for the terminal, the log and the dock's status."""
        return "step 2 re-imaged against the frames: " + self.report.summary()


def passband_transfer(shape: tuple[int, int], optics: Optics, params: PatternParameters) -> np.ndarray:
    """T(f) of :func:`..metrics.sim_passband_truth` on the rfft grid of a 2×-grid image ``shape``."""
    k_top = max(a.k_magnitude for a in params.angles) * params.n_orders
    cutoff = optics.cutoff_cycles_per_um + k_top
    px = optics.pixel_size_um / 2.0
    f = np.hypot(scipy.fft.fftfreq(shape[0], px)[:, None], scipy.fft.rfftfreq(shape[1], px)[None, :])
    return ideal_profile(f / cutoff)


def reimage(image: np.ndarray, optics: Optics, params: PatternParameters, otf: RadialOTF | None = None,
            eps: float = 0.05) -> np.ndarray:
    """Frames (A, P, Y, X) predicted from a passband estimate ``image`` (2Y, 2X), arbitrary scale."""
    img = np.asarray(image, dtype=np.float64)
    t = passband_transfer(img.shape, optics, params)
    obj = scipy.fft.irfft2(scipy.fft.rfft2(img) * t / (t * t + eps * eps), s=img.shape)
    return sim_forward_model(obj, optics, params, otf)


def _fit_frames(model: np.ndarray, data: np.ndarray, crop: int = 8) -> np.ndarray:
    """Least-squares gain and offset of every model frame onto its data frame (inside ``crop``)."""
    out = np.empty_like(model, dtype=np.float64)
    sl = (slice(crop, -crop or None), slice(crop, -crop or None))
    for idx in np.ndindex(model.shape[:2]):
        m, d = model[idx], data[idx]
        a = np.vstack([m[sl].ravel(), np.ones(m[sl].size)]).T
        (g, b), *_ = np.linalg.lstsq(a, d[sl].ravel(), rcond=None)
        out[idx] = g * m + b
    return out


def step2_check(image: np.ndarray, plane: np.ndarray, optics: Optics, params: PatternParameters,
                otf: RadialOTF | None = None, background: float = 0.0, gain: float | None = None,
                var0: float | None = None, border: int = 8) -> Step2Check:
    """Re-image a step-2 output ``image`` (2Y, 2X) and check it against ``plane`` (A, P, Y, X), raw counts.

    gain, var0: the camera noise model (counts per photon, counts²); None fits them on the
    frames (photon-transfer fit, :func:`..pinn.noise.estimate_noise`; var0 clipped at 0).
    border: camera px at each edge left out (the periodic blur wraps there).
    """
    from ..pinn.noise import estimate_noise

    data = np.asarray(plane, dtype=np.float64) - background
    a, p, ny, nx = data.shape
    if gain is None or var0 is None:
        support = (otf.support_cycles_per_um if otf is not None else optics.cutoff_cycles_per_um)
        fit = estimate_noise(data.reshape(a * p, ny, nx), optics.pixel_size_um, support, gain=gain)
        gain = fit.gain if gain is None else gain
        var0 = max(fit.var0, 0.0) if var0 is None else var0
    model = _fit_frames(reimage(image, optics, params, otf), data, border)
    rep = consistency_check(data + background, model + background, optics, params, float(gain), float(var0),
                            background, border=border)
    return Step2Check(rep, float(gain), float(var0), (model + background).astype(np.float32))


__all__ = ["Step2Check", "passband_transfer", "reimage", "step2_check"]
