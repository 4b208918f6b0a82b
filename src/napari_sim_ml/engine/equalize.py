"""Per-frame intensity gains that a sparse sample cannot fake.

The sum of frame n of an angle is (DFT at f = 0 of D_n = g_n·h ⊛ (S·pattern_n))

    Σ D_n = g_n · [Ŝ(0) + Σ_b 2 c_b Re(e^{−i b φ_n} Ŝ(b k))],   c_b = m_b / 2,

so with a sparse sample the object's own spectrum at b·k moves the frame means from phase to
phase, and scaling the frames to equal means writes that structure back as a gain error (a
widefield ghost at ±k). Ŝ(b k) is measurable: the separated band 0 at b·k is H(b k)·Ŝ(b k).
``frame_gains`` therefore solves for g_n with the structure term predicted from band 0 at b·k
(a fixed-point iteration; gain errors leak into band 0 at b·k with weight c_b² < 1, so it
contracts), using a Hann-windowed central crop (no border leakage; any crop measures the same
gains). Orders whose b·k sits where the OTF is below ``MIN_OTF`` cannot be measured and keep the
plain mean (the structure term is then left out).
"""

from __future__ import annotations

import numpy as np

from .bands import separation_matrix
from .otf import RadialOTF, ideal_otf
from .parameters import Optics, PatternParameters

GAIN_CROP = 256  # the gains are measured on a central crop of at most this size (speed)
MIN_OTF = 0.02  # below this transfer at b·k, Ŝ(b·k) is not measured
ITERATIONS = 6


def _transfer(otf: RadialOTF, optics: Optics, kx: float, ky: float) -> float:
    h = float(otf(np.array([np.hypot(kx, ky)]))[0])
    if not otf.source.startswith("measured"):  # the camera pixel integrates (a measured OTF includes it)
        h *= float(np.sinc(kx * optics.pixel_size_um) * np.sinc(ky * optics.pixel_size_um))
    return h


def frame_gains(frames: np.ndarray, optics: Optics, params: PatternParameters, otf: RadialOTF | None = None,
                crop: int = GAIN_CROP) -> np.ndarray:
    """Relative gain of every frame, mean 1; divide the frames by it to equalise.

    Parameters
    ----------
    frames : numpy.ndarray
        (A, P, Y, X) background-subtracted counts.
    optics : Optics
        NA, emission wavelength (nm) and pixel size (µm) of the frames.
    params : PatternParameters
        Their pattern: k in cycles/µm, phases in radians, modulation.
    otf : RadialOTF or None
        The detection OTF (ideal for ``optics`` if None).
    crop : int
        Side of the centred crop the gains are fitted on, px.

    Returns
    -------
    numpy.ndarray
        (A, P) float gains with mean 1.
    """
    arr = np.asarray(frames, dtype=np.float32)
    n_angles, n_phases, ny, nx = arr.shape
    otf = otf or ideal_otf(optics)
    cy, cx = min(ny, crop), min(nx, crop)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    window = np.outer(np.hanning(cy + 2)[1:-1], np.hanning(cx + 2)[1:-1]).astype(np.float32)
    patch = arr[..., y0:y0 + cy, x0:x0 + cx] * window
    dc = patch.sum(axis=(-2, -1), dtype=np.float64)  # (A, P)
    y = (np.arange(cy) + y0) * optics.pixel_size_um  # positions in the field: phases refer to pixel (0, 0)
    x = (np.arange(cx) + x0) * optics.pixel_size_um
    # per angle: band-0 row of the unmixing, the orders that can be measured, the frames' DFT at b·k
    terms = []
    for d, pattern in enumerate(params.angles):
        unmix0 = separation_matrix(pattern.phases_rad, pattern.n_orders)[0]
        phases = np.asarray(pattern.phases_rad)
        for b in range(1, pattern.n_orders + 1):
            kx, ky = b * pattern.k_cycles_per_um[0], b * pattern.k_cycles_per_um[1]
            h = _transfer(otf, optics, kx, ky)
            if h < MIN_OTF:
                continue
            ex = np.stack([np.cos(2 * np.pi * kx * x), -np.sin(2 * np.pi * kx * x)], axis=1).astype(np.float32)
            ey = np.exp(-2j * np.pi * ky * y)
            rows = patch[d] @ ex  # (P, Y, 2): real BLAS products
            at_k = (rows[..., 0].astype(np.float64) + 1j * rows[..., 1]) @ ey  # (P,)
            c_b = pattern.modulation[b - 1] / 2.0
            terms.append((d, b, c_b, h, unmix0, phases, at_k))
    gains = np.ones((n_angles, n_phases))
    for _ in range(ITERATIONS):
        structure = np.zeros((n_angles, n_phases))
        for d, b, c_b, h, unmix0, phases, at_k in terms:
            s_bk = complex(np.sum(unmix0 * at_k / gains[d])) / h  # Ŝ(b·k) on the scale of the frame sums
            structure[d] += 2.0 * c_b * np.real(np.exp(-1j * b * phases) * s_bk)
        s0 = float(np.mean(dc / gains - structure))
        if s0 <= 0:
            return np.ones((n_angles, n_phases))
        denom = s0 + structure
        if np.any(denom <= 0):
            return np.ones((n_angles, n_phases))
        gains = dc / denom
        gains /= gains.mean()
    return gains
