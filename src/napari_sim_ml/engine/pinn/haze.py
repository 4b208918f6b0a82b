"""The unmodulated background (out-of-focus haze) of SIM frames, measured from their bands.

The zero-order band of an angle holds the object's low frequencies and the haze; the
modulated bands (±b) hold the same low object frequencies, shifted by b·k and weighted by
(m_b / 2)·OTF(b·k), but no haze (it is not modulated). Demodulated, low-passed and rescaled,
band b gives the object's smooth part alone, and band 0 minus it is the haze. The PINN starts
its haze map (and its object, from a Wiener filter of the frames less the haze) there: the
fit alone moves haze from the object into its haze map only slowly, as the two differ only
through the modulated bands.
"""

from __future__ import annotations

import numpy as np

from ..bands import separate_bands
from ..parameters import PatternParameters

HAZE_LOWPASS_FRACTION = 0.08  # the haze is measured below this fraction of |k|
MIN_BAND_TRANSFER = 0.01  # (m/2)·OTF(b·k) below this: the band is too weak to measure the object


def estimate_haze(frames: np.ndarray, params: PatternParameters, otf, camera_px: float) -> np.ndarray | None:
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

    Returns
    -------
    numpy.ndarray or None
        (Y, X) float64 haze in counts (its low-passed part, below ``HAZE_LOWPASS_FRACTION``·|k|),
        the median over angles and orders; None when no modulated band is strong enough.
    """
    n_a, n_p, ny, nx = frames.shape
    fy = np.fft.fftfreq(ny, camera_px)[:, None]
    fx = np.fft.fftfreq(nx, camera_px)[None, :]
    y = np.arange(ny)[:, None] * camera_px
    x = np.arange(nx)[None, :] * camera_px
    estimates = []
    for a, ang in enumerate(params.angles):
        bands = separate_bands(np.asarray(frames[a], np.float64), ang.phases_rad, ang.n_orders)
        kx, ky = ang.k_cycles_per_um
        lowpass = np.hypot(fy, fx) < HAZE_LOWPASS_FRACTION * np.hypot(kx, ky)
        b0 = np.fft.ifft2(np.fft.fft2(bands[0].real) * lowpass).real
        for b, m in enumerate(ang.modulation, start=1):
            t = float(otf(np.array([np.hypot(b * kx, b * ky)]))[0])
            weight = 0.5 * m * t * float(np.sinc(b * ky * camera_px) * np.sinc(b * kx * camera_px))
            if weight < MIN_BAND_TRANSFER:
                continue
            demod = bands[2 * b - 1] * np.exp(-2j * np.pi * b * (kx * x + ky * y))
            low = np.fft.ifft2(np.fft.fft2(demod) * lowpass)
            # the band's constant phase (the pattern's origin): the one that aligns it with band 0
            psi = np.angle(np.sum(low * b0))
            obj = (low * np.exp(-1j * psi)).real / weight
            estimates.append(b0 - obj)
    if not estimates:
        return None
    return np.median(np.stack(estimates), axis=0)


__all__ = ["estimate_haze"]
