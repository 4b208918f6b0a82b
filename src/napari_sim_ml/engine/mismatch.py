"""Realistic mismatch between real frames and the ideal SIM forward model.

Each field of ``Imperfections`` switches one way in which real acquisitions differ from
the model a reconstruction assumes (see shared notes on real data); 0 / False is off, and
``Imperfections()`` (everything off) leaves ``simulate_acquisition`` exactly as it was.
The helpers here are pure functions; ``simulate.simulate_acquisition`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from .errors import SimInputError
from .otf import RadialOTF, ideal_otf
from .parameters import AnglePattern, Optics, PatternParameters, wrap_phase


@dataclass(frozen=True)
class Imperfections:
    """Switchable departures from the ideal model (all off by default).

    intensity_fluctuation: per-frame gains drawn uniformly in 1 ± this (laser, bleaching); 0.05-0.1.
    envelope: depth of a smooth Gaussian illumination envelope (intensity at the field corners
        ≈ 1 − envelope); 0.3 is a typical beam profile.
    modulation_variation: relative drop of the modulation depth across the field along a random
        direction (m · (1 − v) at one edge, m at the other); 0.3.
    otf_mismatch: the data are blurred by fairSIM's attenuated OTF ideal(ρ)·a^ρ with a = exp(−2s)
        (s = 0.5 → a = 0.37, a typical measured objective) while reconstructions assume the ideal one.
    k_error: relative error of the given |k| and of its direction (radians) against the data's; 0.003.
    phase_error: std of the given phases' error (radians); 0.05.
    harmonic: amplitude of the next harmonic of the pattern (2k for 2-beam, 3k for 3-beam) relative to m1.
    stripe: amplitude of a camera fixed-pattern stripe (additive counts, × photons), at 44° with an
        11-pixel period, the same in every frame (it does not move with the phase); 0.01.
    background: mean out-of-focus light, × photons: a very blurred, unmodulated haze; 0.3.
    border_structure: brightness of bright thick structures crossing the field borders (× the
        object's maximum; the object is renormalised to [0, 1] afterwards); 1.0.
    resampled: the recorded frames (noise and offset included) were upsampled 2× by bicubic
        interpolation and binned 2 × 2 back, as the DL-SIM 3-beam sets are before use: their noise
        is correlated, its power falling from the passband towards the camera's Nyquist frequency,
        so a noise fit beyond the OTF support sees too little of it. Not part of ``typical()``
        (a history of some data sets, not of the acquisition); ``only("resampled")`` switches it on.
    """

    intensity_fluctuation: float = 0.0
    envelope: float = 0.0
    modulation_variation: float = 0.0
    otf_mismatch: float = 0.0
    k_error: float = 0.0
    phase_error: float = 0.0
    harmonic: float = 0.0
    stripe: float = 0.0
    background: float = 0.0
    border_structure: float = 0.0
    resampled: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise SimInputError(f"imperfection {f.name} must be a finite number ≥ 0, not {value}")
        if self.intensity_fluctuation >= 1 or self.envelope >= 1 or self.modulation_variation > 1:
            raise SimInputError("intensity_fluctuation and envelope must be < 1, modulation_variation ≤ 1")

    @property
    def any(self) -> bool:
        """Return True when at least one imperfection is switched on."""
        return any(getattr(self, f.name) for f in fields(self))

    @classmethod
    def typical(cls) -> Imperfections:
        """All of them at once, at the strengths a real acquisition shows."""
        return cls(**TYPICAL)

    @classmethod
    def only(cls, name: str) -> Imperfections:
        """One imperfection alone at its typical strength (``name`` is a field name)."""
        if name not in TYPICAL and name not in EXTRA:
            raise SimInputError(f"unknown imperfection '{name}'; choose one of {', '.join([*TYPICAL, *EXTRA])}")
        value: Any = TYPICAL[name] if name in TYPICAL else EXTRA[name]
        return cls(**{name: value})


TYPICAL: dict[str, Any] = dict(intensity_fluctuation=0.07, envelope=0.3, modulation_variation=0.3, otf_mismatch=0.5,
               k_error=0.003, phase_error=0.05, harmonic=0.05, stripe=0.01, background=0.3,
               border_structure=0.6)

EXTRA: dict[str, Any] = dict(resampled=True)  # switchable alone, left out of typical()
BICUBIC_A = -0.5  # Keys' cubic convolution as in MATLAB's and PIL's bicubic resizing

STRIPE_ANGLE_DEG = 44.0
STRIPE_PERIOD_PX = 11.0


def frame_gains(shape: tuple[int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame gains (A, P) in 1 ± strength."""
    return 1.0 + rng.uniform(-strength, strength, shape)


def envelope_map(shape: tuple[int, int], depth: float, rng: np.random.Generator) -> np.ndarray:
    """Return a smooth intensity envelope (Y, X).

    A Gaussian beam, off-centre, ≈ 1 at its peak and ≈ 1 − depth at the corners of the field.
    """
    ny, nx = shape
    cy, cx = (np.array(shape) / 2) * (1 + rng.uniform(-0.2, 0.2, 2))
    y, x = np.mgrid[:ny, :nx]
    r2 = ((y - cy) / ny) ** 2 + ((x - cx) / nx) ** 2
    corner = 0.5  # (1/2)² + (1/2)²: r² at a corner of a centred beam
    return 1.0 - depth * (1.0 - np.exp(-r2 / corner * 2.0)) / (1.0 - np.exp(-2.0))


def modulation_map(shape: tuple[int, int], variation: float, rng: np.random.Generator) -> np.ndarray:
    """Return the relative modulation depth (Y, X).

    It falls linearly from 1 to 1 − variation across the field along a random direction.
    """
    ny, nx = shape
    t = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[:ny, :nx]
    s = (np.cos(t) * (x / nx - 0.5) + np.sin(t) * (y / ny - 0.5)) / (0.5 * (abs(np.cos(t)) + abs(np.sin(t))))
    return 1.0 - variation * (s + 1.0) / 2.0


def real_illumination(shape: tuple[int, int], pixel_um: float, pattern: AnglePattern, phase: float,
                      origin_px: float, modulation: np.ndarray | None, envelope: np.ndarray | None,
                      harmonic: float) -> np.ndarray:
    """Pattern envelope · (1 + Σ_b m_b·M(r)·cos(b·θ) + h·m1·M(r)·cos((B+1)·θ)), θ = 2π k·r + φ."""
    y = (np.arange(shape[0]) - origin_px) * pixel_um
    x = (np.arange(shape[1]) - origin_px) * pixel_um
    kx, ky = pattern.k_cycles_per_um
    arg = 2 * np.pi * (ky * y[:, None] + kx * x[None, :]) + phase
    stripes = np.zeros(shape, dtype=np.float64)
    for b, m in enumerate(pattern.modulation, start=1):
        stripes += m * np.cos(b * arg)
    if harmonic:
        stripes += harmonic * pattern.modulation[0] * np.cos((pattern.n_orders + 1) * arg)
    if modulation is not None:
        stripes *= modulation
    out = 1.0 + stripes
    return out * envelope if envelope is not None else out


def data_otf(optics: Optics, strength: float) -> RadialOTF:
    """Return the OTF the data are blurred with: fairSIM's attenuated form, a = exp(−2·strength)."""
    return ideal_otf(optics, attenuation=float(np.exp(-2.0 * strength)))


def perturbed_parameters(params: PatternParameters, k_error: float, phase_error: float,
                         rng: np.random.Generator) -> PatternParameters:
    """Return the parameters a reconstruction is given.

    |k| off by ±k_error (relative), its direction by ±k_error radians, every phase by
    N(0, phase_error) radians.
    """
    angles = []
    for a in params.angles:
        kx, ky = a.k_cycles_per_um
        scale = 1.0 + k_error * rng.choice((-1.0, 1.0))
        turn = k_error * rng.choice((-1.0, 1.0))
        c, s = np.cos(turn), np.sin(turn)
        k = (scale * (c * kx - s * ky), scale * (s * kx + c * ky))
        phases = tuple(wrap_phase(p + rng.normal(0.0, phase_error)) if phase_error else p for p in a.phases_rad)
        angles.append(replace(a, k_cycles_per_um=k, phases_rad=phases).canonical())
    return PatternParameters(tuple(angles))


def camera_stripe(shape: tuple[int, int], amplitude: float, period_px: float = STRIPE_PERIOD_PX,
                  angle_deg: float = STRIPE_ANGLE_DEG, phase_rad: float = 0.4) -> np.ndarray:
    """Fixed-pattern stripe (Y, X) in counts: amplitude · cos at ``angle_deg`` (44°), ``period_px`` (11 px)."""
    t = np.deg2rad(angle_deg)
    y, x = np.mgrid[:shape[0], :shape[1]]
    return amplitude * np.cos(2 * np.pi * (np.cos(t) * x + np.sin(t) * y) / period_px + phase_rad)


def add_camera_stripe(raw: np.ndarray, amplitude: float, period_px: float = STRIPE_PERIOD_PX,
                      angle_deg: float = STRIPE_ANGLE_DEG, frames: tuple[int, ...] | None = None,
                      phase_rad: float = 0.4) -> np.ndarray:
    """Return raw frames (..., Y, X) plus one camera stripe (:func:`camera_stripe`, counts, float32).

    The same stripe is added to the frames whose flat indices are ``frames`` (None: every
    frame), as a sensor's fixed pattern; ``raw`` is not changed.
    """
    ny, nx = raw.shape[-2:]
    stripe = camera_stripe((ny, nx), amplitude, period_px, angle_deg, phase_rad).astype(np.float32)
    out = raw.copy().reshape(-1, ny, nx)
    out[list(range(len(out))) if frames is None else list(frames)] += stripe
    return out.reshape(raw.shape)


def haze(shape: tuple[int, int], pixel_um: float, level: float, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus light (Y, X): a random field blurred over ~2 µm, mean ``level``, ±~30 %."""
    field = gaussian_filter(rng.random(shape), sigma=2.0 / pixel_um, mode="wrap")
    field = (field - field.mean()) / max(field.std(), 1e-12)
    return level * np.clip(1.0 + 0.3 * field, 0.2, None)


def add_border_structure(obj: np.ndarray, inner: tuple[slice, slice], brightness: float,
                         pixel_um: float, rng: np.random.Generator) -> np.ndarray:
    """Return the object plus bright, thick structures that cross the borders of the field ``inner``.

    Two bands enter through different edges, and a bright blob sits half outside one edge;
    the result is renormalised to [0, 1].
    """
    ny, nx = obj.shape
    y0, y1 = inner[0].start, inner[0].stop
    x0, x1 = inner[1].start, inner[1].stop
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    extra = np.zeros_like(obj, dtype=np.float64)
    width = 0.15 / pixel_um
    for _ in range(2):
        # a straight band through a random point of the field at a random angle: it crosses two edges
        cy, cx = rng.uniform(y0, y1), rng.uniform(x0, x1)
        t = rng.uniform(0, np.pi)
        dist = np.abs(np.cos(t) * (y - cy) - np.sin(t) * (x - cx))
        extra = np.maximum(extra, np.exp(-0.5 * (dist / width) ** 2))
    edge = rng.integers(4)
    cy = [y0, y1, rng.uniform(y0, y1), rng.uniform(y0, y1)][edge]
    cx = [rng.uniform(x0, x1), rng.uniform(x0, x1), x0, x1][edge]
    extra = np.maximum(extra, np.exp(-0.5 * ((y - cy) ** 2 + (x - cx) ** 2) / (0.6 / pixel_um) ** 2))
    out = np.maximum(obj, brightness * extra)
    return (out / max(out.max(), 1e-12)).astype(np.float32)


def _keys(t: np.ndarray, a: float = BICUBIC_A) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def upsample_bin_kernel() -> np.ndarray:
    """Return the 1-D filter (5 taps) of a bicubic 2× upsampling followed by 2 × 2 binning.

    Upsampling with pixel-centre alignment puts the fine samples at ∓0.25 camera px around
    each camera pixel; binning averages that pair, so the round trip is the average of the two
    cubic-convolution kernels shifted by ±0.25 px (sum 1; transfer 0.69 at the Nyquist frequency).
    """
    n = np.arange(-2, 3, dtype=np.float64)
    return 0.5 * (_keys(n - 0.25) + _keys(n + 0.25))


def upsample_and_bin(frames: np.ndarray) -> np.ndarray:
    """Frames (..., Y, X) after bicubic 2× upsampling and 2 × 2 binning (symmetric borders, as imresize)."""
    from scipy.ndimage import correlate1d

    h = upsample_bin_kernel()
    out = correlate1d(np.asarray(frames, dtype=np.float64), h, axis=-1, mode="reflect")
    return correlate1d(out, h, axis=-2, mode="reflect")


__all__ = [
    "EXTRA", "upsample_bin_kernel", "upsample_and_bin",
    "Imperfections", "TYPICAL", "frame_gains", "envelope_map", "modulation_map", "real_illumination",
    "data_otf", "perturbed_parameters", "camera_stripe", "add_camera_stripe", "haze", "add_border_structure",
]
