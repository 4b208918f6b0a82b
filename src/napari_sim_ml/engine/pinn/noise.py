"""Camera noise model for the PINN (numpy only; no torch).

The variance of a raw pixel with background-subtracted expectation μ (counts) is
modelled as ``v(μ) = gain · μ + var0``: shot noise through the camera gain plus a
constant term (read noise², shifted by any offset left in the data). ``gain`` and
``var0`` come from a photon-transfer (mean–variance) fit on the raw frames
themselves, in the spirit of Foi et al. (2008):

* the noise is isolated by a Fourier high-pass that keeps only frequencies beyond
  the OTF support (the optics pass no signal there, so what remains is noise;
  the filter's noise power gain is the kept fraction of the spectrum);
* its local energy is binned against the local mean of the frame, and a weighted
  straight line is fitted to the binned variances.

When the camera samples so coarsely that almost no frequencies lie beyond the
OTF support, a fixed outer band is used instead and the fit is marked unreliable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class NoiseModel:
    """v(μ) = gain · μ + var0 in counts², μ = background-subtracted expectation."""

    gain: float
    var0: float
    reliable: bool = True

    def floor(self) -> float:
        """Smallest variance used in the likelihood (half a photon, or var0 if larger)."""
        return float(max(self.var0, 0.5 * self.gain * self.gain, 1e-6))


def noise_from_camera(gain: float, offset: float, read_noise: float, background: float) -> NoiseModel:
    """Noise model from known camera values (offset in counts; ``background`` already subtracted)."""
    return NoiseModel(gain=float(gain), var0=float(read_noise**2 - gain * (offset - background)))


def estimate_noise(frames: np.ndarray, pixel_size_um: float, support_cycles_per_um: float,
                   gain: float | None = None, n_bins: int = 40, border: int = 8) -> NoiseModel:
    """Photon-transfer fit on frames (F, Y, X), background-subtracted counts.

    gain: a known gain fixes the slope; only var0 is fitted then.
    """
    frames = np.asarray(frames, dtype=np.float64)
    f, ny, nx = frames.shape
    fy = scipy.fft.fftfreq(ny, pixel_size_um)[:, None]
    fx = scipy.fft.rfftfreq(nx, pixel_size_um)[None, :]
    radius = np.hypot(fy, fx)
    support = support_cycles_per_um
    mask = radius > 1.1 * support
    reliable = bool(mask.mean() >= 0.05)
    if not reliable:
        mask = radius > 0.8 * radius.max()
        support = 0.8 * radius.max()
    # E[high²](r) = Σ_r' k(r - r')² v(r'): compare it with the low-passed frame smoothed by the
    # same kernel k², so that both sides see the same neighbourhood (no regression dilution)
    kernel = scipy.fft.irfft2(mask.astype(np.float64), s=(ny, nx))
    k2 = scipy.fft.rfft2(kernel * kernel)
    frac = float(k2[0, 0].real)  # noise power gain of the high-pass
    spec = scipy.fft.rfft2(frames, axes=(-2, -1))
    high = scipy.fft.irfft2(spec * mask, s=(ny, nx), axes=(-2, -1))
    low = scipy.fft.irfft2(spec * ((radius < support) * k2 / frac), s=(ny, nx), axes=(-2, -1))
    energy = gaussian_filter(high * high, (0, 2.0, 2.0)) / frac
    mean = gaussian_filter(low, (0, 2.0, 2.0))
    b = min(border, ny // 4, nx // 4)
    sl = (slice(None), slice(b, ny - b or None), slice(b, nx - b or None))
    m, e = mean[sl].ravel(), energy[sl].ravel()
    edges = np.unique(np.quantile(m, np.linspace(0.0, 1.0, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)
    ok = counts > 20
    mb = np.bincount(idx, m, len(edges) - 1)[ok] / counts[ok]
    vb = np.bincount(idx, e, len(edges) - 1)[ok] / counts[ok]
    nb = counts[ok]
    if mb.size < 2:
        g = gain if gain is not None else 1.0
        return NoiseModel(gain=float(g), var0=float(max(np.median(e), 1e-6)), reliable=False)
    w = nb / np.maximum(vb, 1e-12) ** 2
    for _ in range(3):  # iteratively reweighted: weights from the fitted variance
        if gain is None:
            a = np.stack([mb, np.ones_like(mb)], axis=1) * np.sqrt(w)[:, None]
            g, v0 = np.linalg.lstsq(a, vb * np.sqrt(w), rcond=None)[0]
        else:
            g = gain
            v0 = float(np.sum(w * (vb - g * mb)) / np.sum(w))
        fitted = np.maximum(g * mb + v0, 1e-3 * vb.max())
        w = nb / fitted**2
    if gain is None and g <= 0:  # no shot noise visible: a pure read-noise camera model
        g, v0, reliable = 1e-3 * max(float(vb.mean()), 1e-6), float(vb.mean()), False
    return NoiseModel(gain=float(g), var0=float(v0), reliable=reliable)


def noise_model_for(frames: np.ndarray, settings, background: float, pixel_size_um: float,
                    support_cycles_per_um: float) -> NoiseModel:
    """Return the camera noise model of a fit.

    The user's values where given (``settings``: a PinnSettings), else the photon-transfer
    fit on ``frames`` (F, Y, X), background-subtracted counts.
    """
    s = settings
    if s.camera_gain is not None and s.read_noise is not None and s.camera_offset is not None:
        return noise_from_camera(s.camera_gain, s.camera_offset, s.read_noise, background)
    fitted = estimate_noise(frames, pixel_size_um, support_cycles_per_um, gain=s.camera_gain)
    if s.read_noise is not None and s.camera_offset is not None:
        var0 = s.read_noise ** 2 - fitted.gain * (s.camera_offset - background)
        return NoiseModel(gain=fitted.gain, var0=float(var0), reliable=fitted.reliable)
    return fitted


def robust_scale(frames: np.ndarray, q: float = 99.9) -> float:
    """Return a robust intensity scale of background-subtracted frames (the q-th percentile)."""
    s = float(np.percentile(frames, q))
    if not np.isfinite(s) or s <= 0:
        s = float(np.abs(frames).max())
    return s if s > 0 else 1.0


def available_memory_bytes() -> int:
    """Free RAM according to /proc/meminfo (MemAvailable), or 8 GiB when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


__all__ = ["NoiseModel", "noise_from_camera", "estimate_noise", "noise_model_for", "robust_scale",
           "available_memory_bytes"]
