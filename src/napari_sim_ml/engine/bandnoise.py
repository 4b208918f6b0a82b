"""Noise of the separated bands, measured from the data (used by ``wiener.prepare_reconstruction``).

Every angle's band 0 is the same widefield image h ⊛ S, so the difference of two angles' band 0 is
noise alone, inside the OTF where it matters. ``noise_power_in_band`` gives its level (the numerator's
noise variance per Fourier coefficient over the denominator), ``noise_profile`` its shape against
raw frequency (coloured noise of interpolated or binned frames), ``noise_power_beyond_otf`` the
single-angle fallback from the white noise beyond the OTF support.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .bands import FFT_WORKERS
from .parameters import PatternParameters


def noise_power_in_band(difference: np.ndarray, pixel_um: float, support: float, params: PatternParameters,
                         n_angles: int) -> float:
    """N · var(band 0) / n_angles from the difference of two angles' band 0, inside the OTF.

    Both are h ⊛ S plus independent noise, so the difference's power is twice the noise power of
    one band 0, at the frequencies that matter (0.4-0.95 of the support; coloured noise, e.g. of
    interpolated data, is measured where it acts). Discs around the pattern peaks (where phase
    errors leak the side bands) and the spectral axes are left out. The widefield sum has variance
    n_angles · var(band 0), hence the factor (see ``noise_power_beyond_otf``).
    """
    cy, cx = min(difference.shape[0], 256), min(difference.shape[1], 256)  # a central crop is plenty (speed)
    y0, x0 = (difference.shape[0] - cy) // 2, (difference.shape[1] - cx) // 2
    ny, nx = cy, cx
    spec = scipy.fft.rfft2(difference[y0:y0 + cy, x0:x0 + cx], workers=FFT_WORKERS)
    power = spec.real * spec.real + spec.imag * spec.imag
    radius, region = _noise_region((ny, nx), pixel_um, params)
    region &= (radius > 0.4 * support) & (radius < 0.95 * support)
    if region.sum() < 64:
        return float("nan")
    full = difference.shape[0] * difference.shape[1]
    return float(np.mean(power[region])) * (full / (ny * nx)) / (2.0 * n_angles)  # per-coefficient power ∝ N


def _noise_region(shape: tuple[int, int], pixel_um: float, params: PatternParameters) -> tuple[np.ndarray, np.ndarray]:
    """Radius (cycles/µm) on the rfft grid of ``shape`` and the mask without the spectral axes and the pattern peaks."""
    ny, nx = shape
    fy = scipy.fft.fftfreq(ny, pixel_um).astype(np.float32)[:, None]
    fx = scipy.fft.rfftfreq(nx, pixel_um).astype(np.float32)[None, :]
    df = 1.0 / (max(ny, nx) * pixel_um)
    region = (np.abs(fy) > 3.5 * df) & (np.abs(fx) > 3.5 * df)
    for a in params.angles:
        for b in range(1, a.n_orders + 1):
            kx, ky = b * a.k_cycles_per_um[0], b * a.k_cycles_per_um[1]
            region &= (np.hypot(fx - kx, fy - ky) > 6 * df) & (np.hypot(fx + kx, fy + ky) > 6 * df)
    return np.hypot(fy, fx), region


def noise_profile(difference: np.ndarray, pixel_um: float, support: float, params: PatternParameters,
                   n_angles: int, noise_power: float,
                   n_rings: int = 7) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Measure the noise power against raw frequency, relative to ``noise_power``.

    Returns (ring centres in cycles/µm, ratios).

    From the same band-0 difference as ``noise_power_in_band``, in ``n_rings`` rings from 0.3 to 1.0
    of the support (below 0.3, where angles' gains, envelopes and phase errors leak structure into the
    difference, the first ring's value is used), each ring's level from its median power (exponential
    statistics: mean = median / ln 2), robust to the few coefficients that leaked structure still
    reaches. White noise gives ratios ≈ 1; interpolated or binned frames (e.g. the 2× bicubic
    3-beam set) carry more noise at low frequencies than at the edge of the OTF, and the side bands
    bring those low raw frequencies to the top of the SIM spectrum. Empty when the difference is too
    small to measure.
    """
    if not np.isfinite(noise_power) or noise_power <= 0:
        return ((), ())
    cy, cx = min(difference.shape[0], 256), min(difference.shape[1], 256)
    y0, x0 = (difference.shape[0] - cy) // 2, (difference.shape[1] - cx) // 2
    spec = scipy.fft.rfft2(difference[y0:y0 + cy, x0:x0 + cx], workers=FFT_WORKERS)
    power = spec.real * spec.real + spec.imag * spec.imag
    radius, region = _noise_region((cy, cx), pixel_um, params)
    scale = difference.shape[0] * difference.shape[1] / (cy * cx) / (2.0 * n_angles) / noise_power
    edges = np.linspace(0.3, 1.0, n_rings + 1) * support
    centres, ratios = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        ring = region & (radius >= lo) & (radius < hi)
        if ring.sum() >= 16:
            centres.append(float(0.5 * (lo + hi)))
            ratios.append(float(np.median(power[ring])) / np.log(2.0) * scale)  # robust to leaked structure
    if len(centres) < 3:
        return ((), ())
    return tuple(centres), tuple(ratios)


def noise_power_beyond_otf(wide_spectrum: np.ndarray, pixel_um: float, support: float, n_angles: int) -> float:
    """N · var(widefield sum) / n_angles², from the power beyond 1.1 × the OTF support (axes left out).

    Every separated band carries white noise of variance σ²/P per pixel (equal phase steps), so the
    numerator Σ c_b H_b* D_b / n_angles has noise variance (N σ² / (P n_angles)) · denom(f), and the
    band-0 sum over angles has variance n_angles σ² / P: both give the returned factor.
    """
    ny, nx = wide_spectrum.shape
    fy = np.abs(scipy.fft.fftfreq(ny, pixel_um))[:, None]
    fx = np.abs(scipy.fft.fftfreq(nx, pixel_um))[None, :]
    df = 1.0 / (max(ny, nx) * pixel_um)
    outside = (np.hypot(fy, fx) > 1.1 * support) & (fy > 3.5 * df) & (fx > 3.5 * df)
    if outside.sum() < 64:
        return float("nan")
    return float(np.mean(np.abs(wide_spectrum[outside]) ** 2)) / n_angles**2
