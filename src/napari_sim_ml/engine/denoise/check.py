"""Data-consistency check of denoised raw frames against the measured ones (numpy only).

A denoiser must remove noise, nothing else. The residual ``r = (measured − denoised) / σ``, with
σ² = gain·μ + var0 from the camera noise model at μ = the denoised frame, must look like white
noise of mean 0 and variance 1 (slightly below 1: the denoised frame was fitted to the data).
Two kinds of structure are looked for, per camera pixel:

* **structure**: the residual averaged over all frames and a Gaussian neighbourhood (σ =
  ``smooth_px``) — invented or erased object structure is common to every frame; under white
  noise that average is a standard normal z after scaling by sqrt(F · 4π σ²);
* **at k**: for every angle and order b, the residual demodulated by the pattern,
  Σ_n r_n · exp(−i b (2π k·r + φ_n)), smoothed alike — a denoiser that weakens or invents the
  fine pattern leaves its modulation in the residual; under noise it is a complex normal z.

A pixel is flagged where |z| exceeds the threshold of a false-alarm probability ``p_false``
(per map), so pure noise flags a fraction ≈ p_false of the pixels in each map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erfcinv

from ..errors import SimInputError
from ..parameters import Optics, PatternParameters


@dataclass(frozen=True)
class ConsistencyReport:
    """mean, variance: of the normalised residual over all frames and pixels (noise: 0 and ≈1).

    frame_mean, frame_variance: (F,) per frame. z_structure: (Y, X) standard-normal map;
    z_k: (A, orders, Y, X) |complex z| maps. flags: (Y, X) uint8, bit 1 = structure, bit 2 = at k.
    flagged_fraction: share of flagged pixels (noise: ≈ p_false × (1 + A · orders)).
    k_power: (A, orders) mean |z_k|² (noise: 1). residual: (F, Y, X) float32 normalised residual.
    """

    mean: float
    variance: float
    frame_mean: np.ndarray
    frame_variance: np.ndarray
    z_structure: np.ndarray
    z_k: np.ndarray
    flags: np.ndarray
    flagged_fraction: float
    expected_fraction: float
    k_power: np.ndarray
    residual: np.ndarray

    def summary(self) -> str:
        """One line: residual mean and variance, power at k, flagged fraction against noise alone."""
        """One line: residual mean and variance, power at k, flagged fraction against noise alone."""
        kp = ", ".join(f"{v:.2f}" for v in self.k_power.ravel())
        return (f"normalised residual mean {self.mean:+.3f}, variance {self.variance:.3f}; power at k {kp} "
                f"(noise: 1); flagged {self.flagged_fraction:.2%} of pixels (noise alone: "
                f"{self.expected_fraction:.2%})")


def normalised_residual(measured: np.ndarray, denoised: np.ndarray, gain: float, var0: float,
                        background: float = 0.0) -> np.ndarray:
    """(measured − denoised) / sqrt(gain · max(denoised − background, 0) + var0), float32."""
    mu = np.clip(np.asarray(denoised, dtype=np.float64) - background, 0.0, None)
    var = np.maximum(gain * mu + var0, max(0.5 * gain * gain, 1e-6))
    return ((np.asarray(measured, dtype=np.float64) - denoised) / np.sqrt(var)).astype(np.float32)


def data_noise(measured: np.ndarray, optics: Optics, gain: float, background: float = 0.0) -> tuple[float, float]:
    """Return (gain, var0) for the residual of measured planes (A, P, Y, X).

    gain is the given one (the model's, counts per photon); var0 (counts²) is fitted on the
    measured frames themselves (photon-transfer fit, slope fixed).
    """
    from ..pinn.noise import estimate_noise

    a, p, ny, nx = measured.shape
    fit = estimate_noise(np.asarray(measured, dtype=np.float64).reshape(a * p, ny, nx) - background,
                         optics.pixel_size_um, optics.cutoff_cycles_per_um, gain=gain)
    return float(gain), float(max(fit.var0, 0.0))


def consistency_check(measured: np.ndarray, denoised: np.ndarray, optics: Optics, params: PatternParameters,
                      gain: float, var0: float, background: float = 0.0, smooth_px: float = 2.0,
                      p_false: float = 1e-4, border: int = 4) -> ConsistencyReport:
    """Check a denoised plane (A, P, Y, X) against the measured plane (raw counts, same background).

    gain, var0: camera noise model (counts, counts²). smooth_px: neighbourhood σ (camera px).
    border: pixels at each edge left out of the statistics (flags there stay 0).
    """
    measured = np.asarray(measured)
    if measured.shape != np.shape(denoised) or measured.ndim != 4:
        raise SimInputError("the measured and denoised planes must both be (angles, phases, Y, X) of one shape")
    if measured.shape[:2] != (params.n_angles, params.n_phases):
        raise SimInputError("the pattern parameters do not match the plane's angles × phases")
    a, p, ny, nx = measured.shape
    r = normalised_residual(measured, denoised, gain, var0, background).reshape(a, p, ny, nx)
    b = min(border, ny // 4, nx // 4)
    inner = (slice(b, ny - b or None), slice(b, nx - b or None))
    frames_inner = (slice(None), *inner)  # named: mypy takes x[(a, *b)] for 3.11 syntax
    maps_inner = (slice(None), slice(None), *inner)
    flat = r.reshape(a * p, ny, nx)[frames_inner].astype(np.float64)
    kernel_gain = math.sqrt(4.0 * math.pi) * smooth_px  # 1 / std of a Gaussian-smoothed unit white noise
    z_struct = gaussian_filter(r.reshape(a * p, ny, nx).mean(axis=0), smooth_px) * kernel_gain * math.sqrt(a * p)
    px = optics.pixel_size_um
    yy = np.arange(ny)[:, None] * px
    xx = np.arange(nx)[None, :] * px
    n_orders = params.n_orders
    zk = np.zeros((a, n_orders, ny, nx), np.float32)
    for d, pattern in enumerate(params.angles):
        kx, ky = pattern.k_cycles_per_um
        arg = 2 * np.pi * (kx * xx + ky * yy)
        for o in range(1, n_orders + 1):
            acc = np.zeros((ny, nx), np.complex128)
            for n, phi in enumerate(pattern.phases_rad):
                acc += r[d, n] * np.exp(-1j * o * (arg + phi))
            sm = gaussian_filter(acc.real, smooth_px) + 1j * gaussian_filter(acc.imag, smooth_px)
            zk[d, o - 1] = np.abs(sm) * kernel_gain / math.sqrt(p)
    t_real = float(math.sqrt(2.0) * erfcinv(p_false))
    t_complex = float(math.sqrt(-math.log(p_false)))
    flags = np.zeros((ny, nx), np.uint8)
    flags[inner] |= (np.abs(z_struct[inner]) > t_real).astype(np.uint8)
    flags[inner] |= 2 * (zk[maps_inner] > t_complex).any(axis=(0, 1)).astype(np.uint8)
    n_maps = 1 + a * n_orders
    return ConsistencyReport(
        mean=float(flat.mean()), variance=float(flat.var()),
        frame_mean=flat.mean(axis=(1, 2)), frame_variance=flat.var(axis=(1, 2)),
        z_structure=z_struct.astype(np.float32), z_k=zk, flags=flags,
        flagged_fraction=float((flags[inner] > 0).mean()),
        expected_fraction=float(1 - (1 - p_false) ** n_maps),
        k_power=(zk[maps_inner].astype(np.float64) ** 2).mean(axis=(2, 3)),
        residual=r.reshape(a * p, ny, nx))


__all__ = ["ConsistencyReport", "normalised_residual", "data_noise", "consistency_check"]
