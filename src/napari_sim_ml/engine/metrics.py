"""Quality measures: FRC, decorrelation resolution, modulation contrast, PSNR/SSIM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .artifacts import (  # noqa: F401  (the truth-free measures, importable from here as before)
    CROSS_WARN_DB,
    IMPRINT_WARN_DB,
    CrossScore,
    ImprintScore,
    ResidualStats,
    _radial_bins,
    border_cross,
    noise_variance_out_of_band,
    normalised_residual_stats,
    pattern_imprint,
    populated_radius,
    sim_forward_model,
    trust_warnings,
)
from .bands import edge_window, separate_bands
from .otf import ideal_profile
from .parameters import Optics, PatternParameters

FRC_THRESHOLD = 1.0 / 7.0


@dataclass(frozen=True)
class FRCResult:
    """A Fourier ring correlation.

    freqs: ring centres (cycles/µm); frc: correlation per ring;
    resolution_um: 1 / first frequency where the smoothed FRC drops below 1/7.
    """

    freqs: np.ndarray
    frc: np.ndarray
    resolution_um: float


def _tapered(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    taper = max(4, min(img.shape) // 16)
    win = edge_window(img.shape[0], taper)[:, None] * edge_window(img.shape[1], taper)[None, :]
    return (img - img.mean()) * win


def fourier_ring_correlation(a: np.ndarray, b: np.ndarray, pixel_size_um: float) -> FRCResult:
    """FRC of two independent images of the same field (same shape and pixel)."""
    if a.shape != b.shape:
        raise ValueError("FRC needs two images of the same shape")
    fa, fb = scipy.fft.fft2(_tapered(a)), scipy.fft.fft2(_tapered(b))
    index, freqs = _radial_bins(a.shape, pixel_size_um)
    n = freqs.size
    ring = index.ravel()
    keep = ring < n
    num = np.bincount(ring[keep], (fa * np.conj(fb)).real.ravel()[keep], n)
    da = np.bincount(ring[keep], (np.abs(fa) ** 2).ravel()[keep], n)
    db = np.bincount(ring[keep], (np.abs(fb) ** 2).ravel()[keep], n)
    frc = num / np.sqrt(np.maximum(da * db, 1e-30))
    smooth = np.convolve(frc, np.ones(3) / 3, mode="same")
    below = np.nonzero((smooth < FRC_THRESHOLD) & (np.arange(n) > 2))[0]
    cut = freqs[below[0]] if below.size else freqs[-1]
    return FRCResult(freqs, frc, float(1.0 / cut) if cut > 0 else float("inf"))



def decorrelation_resolution(image: np.ndarray, pixel_size_um: float, n_filters: int = 10,
                             n_radii: int = 50) -> float:
    """Single-image resolution (µm) by decorrelation analysis (Descloux et al. 2019).

    The image spectrum is correlated with its normalised (phase-only) version
    inside discs of growing radius; the peak position of these curves, also for a
    series of Gaussian high-pass filters, gives the highest frequency k_max with
    signal above noise; resolution = 1 / k_max.

    Radii are measured relative to the image's populated radius (``populated_radius``),
    not to the grid's Nyquist frequency, so the answer depends on the image and not on
    the sampling grid: a camera-grid image and its Fourier zero-padded copy on the 2×
    grid score the same. A curve peaking at the edge of the populated disc is noise and
    is ignored, as in the original method.
    """
    img = np.asarray(image, dtype=np.float64)
    reach = populated_radius(img, pixel_size_um)
    spec = scipy.fft.fft2(_tapered(img))
    ny, nx = spec.shape
    fy = scipy.fft.fftfreq(ny, pixel_size_um)[:, None]
    fx = scipy.fft.fftfreq(nx, pixel_size_um)[None, :]
    r = np.hypot(fy, fx) / reach  # 1 = edge of the populated disc
    inside = r <= 1.0
    normalised = spec / np.maximum(np.abs(spec), 1e-12)
    radii = np.linspace(0.02, 1.0, n_radii)
    order = np.argsort(r[inside])
    r_sorted = r[inside][order]
    ends = np.searchsorted(r_sorted, radii, side="right")
    nn = np.cumsum((np.abs(normalised[inside]) ** 2)[order])[ends - 1]

    def curve(filtered: np.ndarray) -> tuple[float, float]:
        cross = np.cumsum((filtered * np.conj(normalised)).real[inside][order])[ends - 1]
        power = np.sum(np.abs(filtered[inside]) ** 2)
        d = cross / np.sqrt(np.maximum(power * nn, 1e-30))
        i = int(np.argmax(d))
        return radii[i], d[i]

    best = 0.0
    peaks = [curve(spec)]
    for sigma in np.geomspace(0.5, 0.02, n_filters):
        peaks.append(curve(spec * (1.0 - np.exp(-(r**2) / (2 * sigma**2)))))
    for radius, amp in peaks:
        if amp > 0.05 and radius < 0.99:
            best = max(best, radius)
    if best <= 0:
        return float("inf")
    return float(1.0 / (best * reach))


def modulation_contrast_map(plane: np.ndarray, params: PatternParameters, smooth_px: float = 2.0,
                            background: float = 0.0) -> np.ndarray:
    """Local modulation contrast per angle, (A, Y, X): 2|band 1| / band 0, smoothed.

    1 means full stripe contrast at that pixel, 0 no detectable modulation.
    """
    from scipy.ndimage import gaussian_filter

    out = []
    for frames, pattern in zip(np.asarray(plane, dtype=np.float32) - background, params.angles, strict=False):
        bands = separate_bands(frames, pattern.phases_rad, pattern.n_orders)
        amp = gaussian_filter(2.0 * np.abs(bands[1]), smooth_px)
        base = gaussian_filter(bands[0].real, smooth_px)
        out.append(np.clip(amp / np.maximum(base, 1e-6 * max(base.max(), 1e-12)), 0.0, 2.0))
    return np.stack(out).astype(np.float32)


def sim_passband_truth(truth: np.ndarray, optics: Optics, params: PatternParameters) -> np.ndarray:
    """Return the truth (on the 2× grid) seen through the ideal SIM passband.

    Filtered by an ideal OTF whose cutoff is kc + |k_top| (the support reached by the top order).
    """
    k_top = max(a.k_magnitude for a in params.angles) * params.n_orders
    cutoff = optics.cutoff_cycles_per_um + k_top
    ny, nx = truth.shape
    px = optics.pixel_size_um / 2.0
    f = np.hypot(scipy.fft.fftfreq(ny, px)[:, None], scipy.fft.rfftfreq(nx, px)[None, :])
    transfer = ideal_profile(f / cutoff)
    return scipy.fft.irfft2(scipy.fft.rfft2(truth) * transfer, s=truth.shape).astype(np.float32)


def _normalise(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares gain and offset that map ``image`` onto ``reference``."""
    a = np.vstack([image.ravel(), np.ones(image.size)]).T
    coef, *_ = np.linalg.lstsq(a, reference.ravel(), rcond=None)
    return (image * coef[0] + coef[1]).astype(np.float64)


def compare_to_truth(image: np.ndarray, truth: np.ndarray, crop: int = 16) -> tuple[float, float]:
    """Return (PSNR dB, SSIM) of ``image`` against ``truth``.

    After a least-squares gain/offset match, ignoring ``crop`` pixels at each border; data range = truth's range.
    """
    sl = (slice(crop, -crop or None), slice(crop, -crop or None))
    ref = np.asarray(truth, dtype=np.float64)[sl]
    img = _normalise(np.asarray(image, dtype=np.float64)[sl], ref)
    rng = float(ref.max() - ref.min()) or 1.0
    return (float(peak_signal_noise_ratio(ref, img, data_range=rng)),
            float(structural_similarity(ref, img, data_range=rng)))
