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


def inband_noise_ratio(plane: np.ndarray, params, pixel_size_um: float, support_cycles_per_um: float,
                       model: NoiseModel, band: tuple[float, float] = (0.3, 0.9)) -> float | None:
    """Measured noise power inside the OTF support over what ``model`` predicts there.

    The photon-transfer fit sees the noise only beyond the OTF support. Data that were
    interpolated, binned or filtered after detection carry correlated noise whose power
    falls towards the camera's Nyquist frequency, so that fit under-estimates the noise
    where the signal is (8× on the DL-SIM 3-beam sets, binned back from a bicubic 2×
    upsampling). Here the noise is measured inside the support instead: for every angle the
    phase frames (each divided by its mean, for bleaching) are combined with the weights
    that cancel every modulated band for the given phases, which leaves the zero-order band,
    the same object for all angles; the differences between angles hold noise only (and
    what the pattern model misses). Its power in the annulus ``band`` × kc, away from ±b·k,
    is compared with the model's prediction for the same combination.

    Parameters
    ----------
    plane : ndarray
        (A, P, Y, X) background-subtracted counts.
    params : PatternParameters
        Phases (radians), orders and k (cycles/µm) of the frames.
    pixel_size_um, support_cycles_per_um : float
        Camera pixel (µm) and OTF support kc (cycles/µm).
    model : NoiseModel
        The photon-transfer model to check.

    Returns
    -------
    float or None
        The ratio (≈ 1 when the model is right), or None with fewer than two angles or
        too few frequencies in the band.
    """
    from ..bands import periodic_smooth

    plane = np.asarray(plane, dtype=np.float64)
    n_a, n_p, ny, nx = plane.shape
    if n_a < 2 or params.n_angles != n_a:
        return None
    means = np.maximum(plane.mean(axis=(-2, -1)), 1e-12)
    overall = float(means.mean())
    wides, expect = [], []
    for a, angle in enumerate(params.angles):
        rows = [np.ones(n_p)]
        for b in range(1, angle.n_orders + 1):
            rows += [np.cos(b * np.asarray(angle.phases_rad)), np.sin(b * np.asarray(angle.phases_rad))]
        rhs = np.zeros(len(rows))
        rhs[0] = 1.0
        c = np.linalg.lstsq(np.stack(rows), rhs, rcond=None)[0]  # least-norm weights: Σc = 1, bands nulled
        eq = overall / means[a]
        wides.append(np.tensordot(c * eq, plane[a], axes=1))
        var = np.maximum(model.gain * means[a] + model.var0, 1e-12)  # mean variance of each frame
        expect.append(float(np.sum((c * eq) ** 2 * var)))
    fy = np.fft.fftfreq(ny, pixel_size_um)[:, None]
    fx = np.fft.fftfreq(nx, pixel_size_um)[None, :]
    r = np.hypot(fy, fx)
    kc = support_cycles_per_um
    mask = (r > band[0] * kc) & (r < band[1] * kc)
    df = 1.0 / (max(ny, nx) * pixel_size_um)
    for angle in params.angles:
        for b in range(1, angle.n_orders + 1):
            kx, ky = b * angle.k_cycles_per_um[0], b * angle.k_cycles_per_um[1]
            for sgn in (1, -1):
                mask &= np.hypot(fx - sgn * kx, fy - sgn * ky) > 3 * df
    if mask.sum() < 32:
        return None
    ratios = []
    for i in range(n_a):
        for j in range(i + 1, n_a):
            g = float(np.sum(wides[i] * wides[j]) / max(np.sum(wides[j] ** 2), 1e-12))
            d = periodic_smooth(wides[i] - g * wides[j])[0].astype(np.float64)
            power = np.abs(np.fft.fft2(d - d.mean())) ** 2 / (ny * nx)
            # the median of the exponentially distributed periodogram is ln 2 × its mean
            ratios.append(float(np.median(power[mask])) / np.log(2) / (expect[i] + g * g * expect[j]))
    return float(np.median(ratios))


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


__all__ = ["NoiseModel", "noise_from_camera", "estimate_noise", "noise_model_for", "inband_noise_ratio", "robust_scale",
           "available_memory_bytes"]
