"""The unmodulated background (out-of-focus haze) of SIM frames, measured from their bands.

The zero-order band of an angle holds the object's low frequencies and the haze; the
modulated bands (±b) hold the same low object frequencies, shifted by b·k and weighted by
(m_b / 2)·OTF(|f + b·k|), but no haze (it is not modulated). Demodulated and rescaled, band b
gives the object's smooth part alone, and band 0 minus it is the haze. The PINN starts its
haze map (and its object, from a Wiener filter of the frames less the haze) there: the fit
alone moves haze from the object into its haze map only slowly, as the two differ only
through the modulated bands.

The scale of band b against band 0 is not taken from the model's m and OTF: a modulation or
OTF mismatch (an attenuated objective, resampled frames, a modulation that varies over the
field) makes band b weaker than the model at every frequency and would read as haze. It is
measured instead on rings just above the haze (``HAZE_LOWPASS_FRACTION``–``CALIBRATION_TOP``
of |k|), as a log-linear function of |f| (an OTF that falls faster than the model's changes
the ratio smoothly with |f|), and extrapolated into the haze disc. A band whose ratio changes
steeply over those rings (``MAX_RATIO_SLOPE``) cannot tell haze reaching into the rings from a
mismatch, and is not used; without two usable bands no haze is reported.
"""

from __future__ import annotations

import numpy as np

from ..bands import separate_bands
from ..parameters import PatternParameters

HAZE_LOWPASS_FRACTION = 0.08  # the haze is measured below this fraction of |k|
CALIBRATION_TOP = 0.32  # band b is scaled against band 0 on rings from HAZE_LOWPASS_FRACTION to this, × |k|
CALIBRATION_RINGS = 4
# |d log(ratio) / d(|f| / |k|)| above this: the ratio of band b to band 0 changes too fast over the
# calibration rings to be a smooth OTF/modulation mismatch (simulated mismatches: ≤ 2.4; the real 3-beam
# and OMX sets: 2–12, where haze may reach into the rings), so the band cannot measure the haze
MAX_RATIO_SLOPE = 2.5
MIN_BAND_TRANSFER = 0.01  # (m/2)·OTF(b·k) below this: the band is too weak to measure the object
MIN_BANDS = 2  # usable bands needed for a haze measure
MIN_DISC_PX = 3.0  # the haze disc's radius in Fourier pixels of the field: smaller fields cannot measure it


def _pixel_sinc(fy: np.ndarray | float, fx: np.ndarray | float, camera_px: float) -> np.ndarray:
    return np.sinc(fy * camera_px) * np.sinc(fx * camera_px)


def _band_scale(demod: np.ndarray, model: np.ndarray, radius: np.ndarray, k_abs: float) -> tuple[float, np.ndarray]:
    """Return (slope, scale map): band b over band 0 × transfer, fitted on the calibration rings.

    ``slope`` is d log|scale| / d(|f| / |k|); the map is the fitted complex scale at every |f|.
    """
    edges = np.linspace(HAZE_LOWPASS_FRACTION, CALIBRATION_TOP, CALIBRATION_RINGS + 1) * k_abs
    centres, scales = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        ring = (radius >= lo) & (radius < hi)
        power = float(np.sum(np.abs(model[ring]) ** 2))
        if not power > 0:  # no signal in the ring, or NaN frames
            continue
        scales.append(np.sum(demod[ring] * np.conj(model[ring])) / power)
        centres.append(0.5 * (lo + hi) / k_abs)
    if len(scales) < 2 or not all(np.isfinite(s) and abs(s) > 0 for s in scales):  # no signal, or NaN frames
        return float("inf"), np.zeros_like(radius)
    slope, intercept = np.polyfit(centres, np.log(np.abs(scales)), 1)
    phase = float(np.angle(np.sum(scales)))
    return float(slope), np.exp(intercept + slope * radius / k_abs + 1j * phase)


def band_haze(frames: np.ndarray, params: PatternParameters, otf, camera_px: float) -> list[np.ndarray]:
    """Return the haze (Y, X) seen by every usable modulated band (see :func:`estimate_haze`)."""
    n_a, n_p, ny, nx = frames.shape
    fy = np.fft.fftfreq(ny, camera_px)[:, None]
    fx = np.fft.fftfreq(nx, camera_px)[None, :]
    radius = np.hypot(fy, fx)
    y = np.arange(ny)[:, None] * camera_px
    x = np.arange(nx)[None, :] * camera_px
    zero_transfer = np.maximum(otf(radius) * _pixel_sinc(fy, fx, camera_px), 1e-6)
    estimates = []
    for a, ang in enumerate(params.angles):
        kx, ky = ang.k_cycles_per_um
        k_abs = float(np.hypot(kx, ky))
        if HAZE_LOWPASS_FRACTION * k_abs * min(ny, nx) * camera_px < MIN_DISC_PX:
            continue
        bands = separate_bands(np.asarray(frames[a], np.float64), ang.phases_rad, ang.n_orders)
        disc = radius < HAZE_LOWPASS_FRACTION * k_abs
        band0 = np.fft.fft2(bands[0].real)
        for b, m in enumerate(ang.modulation, start=1):
            nominal = 0.5 * m * float(otf(np.array([b * k_abs]))[0]) * float(_pixel_sinc(b * ky, b * kx, camera_px))
            if nominal < MIN_BAND_TRANSFER:
                continue
            demod = np.fft.fft2(bands[2 * b - 1] * np.exp(-2j * np.pi * b * (kx * x + ky * y)))
            # how band b sees the object at f, relative to band 0: OTF(|f + b·k|) / OTF(|f|), pixel included
            shifted = otf(np.hypot(fy + b * ky, fx + b * kx)) * _pixel_sinc(fy + b * ky, fx + b * kx, camera_px)
            transfer = shifted / zero_transfer
            slope, scale = _band_scale(demod, band0 * transfer, radius, k_abs)
            if abs(slope) > MAX_RATIO_SLOPE:
                continue
            obj = np.where(disc, demod / np.where(disc, scale * transfer, 1.0), 0.0)
            estimates.append(np.fft.ifft2((band0 - obj) * disc).real)
    return estimates


def estimate_haze(frames: np.ndarray, params: PatternParameters, otf, camera_px: float,
                  min_fraction: float | None = None) -> np.ndarray | None:
    """Return the smooth unmodulated background (Y, X) of ``frames``, or None.

    Parameters
    ----------
    frames : numpy.ndarray
        (A, P, Y, X) background-subtracted frames, counts.
    params : PatternParameters
        Pattern of every angle (k in cycles/µm, phases in radians, modulation depths).
    otf : RadialOTF
        Detection OTF (callable on frequencies in cycles/µm).
    camera_px : float
        Camera pixel size, µm.
    min_fraction : float or None
        Report the haze only when every band sees at least this fraction of the frames' mean.

    Returns
    -------
    numpy.ndarray or None
        (Y, X) float64 haze in counts (its low-passed part, below ``HAZE_LOWPASS_FRACTION``·|k|),
        the median over angles and orders; None when fewer than ``MIN_BANDS`` modulated bands are
        strong enough and scale smoothly against band 0 (haze and a model mismatch not separable), when
        the haze disc is under ``MIN_DISC_PX`` Fourier pixels of the field, or when ``min_fraction`` is
        given and some band sees less haze than that fraction of the frames' mean (the bands must agree).
    """
    estimates = band_haze(frames, params, otf, camera_px)
    if len(estimates) < MIN_BANDS:
        return None
    if min_fraction is not None and min(float(e.mean()) for e in estimates) < min_fraction * float(frames.mean()):
        return None
    return np.median(np.stack(estimates), axis=0)


__all__ = ["band_haze", "estimate_haze"]
