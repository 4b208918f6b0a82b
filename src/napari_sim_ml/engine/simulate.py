"""Forward model and synthetic test objects with known truth.

The object lives on the 2× grid (pixel = raw pixel / 2; fine pixel (2i, 2j) sits
on raw pixel (i, j)). Each frame is object × pattern, blurred by the OTF and the
camera-pixel integration (a sinc), sampled on the camera grid, then photon
(Poisson) noise, Gaussian read noise and a camera offset are added. The field is
simulated with a margin and cropped, so borders are not periodic, as in real data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from skimage.draw import circle_perimeter_aa, line_aa
from skimage.filters import gaussian

from . import mismatch
from .errors import SimInputError
from .mismatch import Imperfections
from .otf import RadialOTF, ideal_otf
from .parameters import AnglePattern, Optics, PatternParameters, wrap_phase

STRUCTURES = ("filaments", "mesh", "rings", "lines", "grating", "linepairs")
PERIODIC_TARGETS = ("grating", "linepairs")  # calibration slides: see periodic_target
DEFAULT_OPTICS = Optics(na=1.4, wavelength_nm=525.0, pixel_size_um=0.08)  # oil objective, GFP emission, 80 nm px


@dataclass(frozen=True)
class SimulatedAcquisition:
    """raw: (A, P, Y, X) float32 counts; truth: (2Y, 2X) float32 object in [0, 1]."""

    raw: np.ndarray
    truth: np.ndarray
    params: PatternParameters
    optics: Optics
    photons: float
    offset: float
    read_noise: float
    given_params: PatternParameters | None = None
    imperfections: Imperfections | None = None
    frame_gains: np.ndarray | None = None

    @property
    def reconstruction_params(self) -> PatternParameters:
        """The parameters a reconstruction is given.

        ``params`` (those of the data) unless k/phase errors were simulated.
        """
        return self.given_params if self.given_params is not None else self.params


def _draw_polyline(img: np.ndarray, pts: np.ndarray, value: float) -> None:
    for (y0, x0), (y1, x1) in zip(pts[:-1], pts[1:], strict=False):
        rr, cc, val = line_aa(int(round(y0)), int(round(x0)), int(round(y1)), int(round(x1)))
        ok = (rr >= 0) & (rr < img.shape[0]) & (cc >= 0) & (cc < img.shape[1])
        np.maximum.at(img, (rr[ok], cc[ok]), val[ok] * value)


def make_object(structure: str, shape: tuple[int, int], pixel_um: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a test object on a grid of ``shape`` with pixel ``pixel_um`` µm, values in [0, 1]."""
    ny, nx = shape
    img = np.zeros(shape, dtype=np.float64)
    if structure == "filaments":
        n = max(4, int(ny * nx * pixel_um**2 / 6.0))
        step = 0.05 / pixel_um
        for _ in range(n):
            pos = rng.uniform((0, 0), (ny, nx))
            theta = rng.uniform(0, 2 * np.pi)
            pts = [pos.copy()]
            for _ in range(int(1.5 * max(ny, nx) / step)):
                theta += rng.normal(0, 0.04)
                pos = pos + step * np.array([np.sin(theta), np.cos(theta)])
                pts.append(pos.copy())
            _draw_polyline(img, np.array(pts), rng.uniform(0.5, 1.0))
    elif structure == "mesh":
        n = max(6, int((ny + nx) * pixel_um / 0.6))
        diag = math.hypot(ny, nx)
        for _ in range(n):
            c = rng.uniform((0, 0), (ny, nx))
            t = rng.uniform(0, np.pi)
            d = np.array([np.sin(t), np.cos(t)]) * diag
            _draw_polyline(img, np.array([c - d, c + d]), rng.uniform(0.6, 1.0))
    elif structure == "rings":
        n = max(4, int(ny * nx * pixel_um**2 / 1.5))
        for _ in range(n):
            r = rng.uniform(0.1, 0.5) / pixel_um
            cy, cx = rng.uniform((0, 0), (ny, nx))
            rr, cc, val = circle_perimeter_aa(int(cy), int(cx), int(round(r)), shape=shape)
            np.maximum.at(img, (rr, cc), val * rng.uniform(0.5, 1.0))
    elif structure == "lines":
        spacings_um = np.geomspace(0.40, 0.08, 8)
        length = 1.2 / pixel_um
        cols = 4
        cell = (ny / 2, nx / cols)
        for i, s in enumerate(spacings_um):
            cy, cx = cell[0] * (i // cols + 0.5), cell[1] * (i % cols + 0.5)
            t = rng.uniform(0, np.pi)
            along = np.array([np.sin(t), np.cos(t)]) * length / 2
            across = np.array([np.cos(t), -np.sin(t)]) * s / pixel_um / 2
            for sign in (-1, 1):
                c = np.array([cy, cx]) + sign * across
                _draw_polyline(img, np.array([c - along, c + along]), 1.0)
    elif structure in PERIODIC_TARGETS:
        img = periodic_target(structure, shape, pixel_um, rng)
    else:
        raise SimInputError(f"unknown structure '{structure}'; choose one of {', '.join(STRUCTURES)}")
    img = gaussian(img, sigma=0.6, preserve_range=True)
    return (img / max(img.max(), 1e-12)).astype(np.float32)


def sparse_rings(shape: tuple[int, int], pixel_um: float, rng: np.random.Generator,
                 radius_um: tuple[float, float] = (0.05, 0.1), per_um2: float = 0.25) -> np.ndarray:
    """Draw small, sparse rings like clathrin-coated pits.

    ``per_um2`` rings per µm² of radius ``radius_um`` (µm) on a dark background; values in [0, 1]
    (a truth for ``simulate_acquisition``).
    """
    img = np.zeros(shape, dtype=np.float64)
    n = max(1, int(shape[0] * shape[1] * pixel_um**2 * per_um2))
    for _ in range(n):
        r = rng.uniform(*radius_um) / pixel_um
        cy, cx = rng.uniform((0, 0), shape)
        rr, cc, val = circle_perimeter_aa(int(cy), int(cx), max(1, int(round(r))), shape=shape)
        np.maximum.at(img, (rr, cc), val * rng.uniform(0.5, 1.0))
    img = gaussian(img, sigma=0.6, preserve_range=True)
    return (img / max(img.max(), 1e-12)).astype(np.float32)


def periodic_target(structure: str, shape: tuple[int, int], pixel_um: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Unblurred calibration-slide object (Y, X) in [0, 1] with strong, regularly spaced spectral peaks.

    'grating': the whole field ruled with thin parallel lines, period 0.25-0.6 µm, random direction.
    'linepairs': a lattice (pitch 2.4 µm) of identical groups of 3 line pairs (bars 0.12 µm wide,
    period 0.24-0.4 µm), all in one random direction, as on a resolution target.
    """
    y, x = np.mgrid[: shape[0], : shape[1]] * pixel_um
    t = rng.uniform(0, np.pi)
    across = x * np.cos(t) + y * np.sin(t)  # µm, perpendicular to the lines
    along = -x * np.sin(t) + y * np.cos(t)
    offset = rng.uniform(0, 10.0)
    if structure == "grating":
        period = rng.uniform(0.25, 0.6)
        phase = np.mod(across + offset, period)
        return (np.minimum(phase, period - phase) < 0.5 * pixel_um + 0.02).astype(np.float64)
    period, pitch, width = rng.uniform(0.24, 0.4), 2.4, 0.12
    cell_across = np.mod(across + offset, pitch)
    cell_along = np.mod(along + offset, pitch)
    in_group = (cell_across < 3 * period) & (cell_along < 0.7 * pitch)
    return (in_group & (np.mod(cell_across, period) < width)).astype(np.float64)


def random_parameters(
    optics: Optics,
    n_angles: int = 3,
    n_phases: int = 3,
    n_orders: int = 1,
    k_fraction: float = 0.8,
    modulation: tuple[float, ...] | None = None,
    phase_jitter: float = 0.25,
    rng: np.random.Generator | None = None,
) -> PatternParameters:
    """Draw realistic pattern parameters.

    Evenly spread angles with a random offset, the top order at ``k_fraction`` × kc (cycles/µm),
    phase steps 2π/P with uniform jitter ±``phase_jitter`` (radians).
    """
    rng = rng or np.random.default_rng()
    kc = optics.cutoff_cycles_per_um
    k1 = k_fraction * kc / n_orders
    mods = modulation or ((0.8,) if n_orders == 1 else (0.6, 0.9))
    start = rng.uniform(0, np.pi / n_angles)
    angles = []
    for d in range(n_angles):
        theta = start + d * np.pi / n_angles + rng.normal(0, 0.01)
        offset = rng.uniform(-np.pi, np.pi)
        phases = tuple(wrap_phase(offset + 2 * np.pi * n / n_phases + rng.uniform(-phase_jitter, phase_jitter))
                       for n in range(n_phases))
        angles.append(AnglePattern((k1 * np.cos(theta), k1 * np.sin(theta)), phases, mods).canonical())
    return PatternParameters(tuple(angles))


def illumination(shape: tuple[int, int], pixel_um: float, pattern: AnglePattern, phase: float,
                 origin_px: float = 0.0) -> np.ndarray:
    """Pattern 1 + Σ_b m_b cos(b(2π k·r + φ)) on a grid; pixel (origin_px, origin_px) is r = 0."""
    y = (np.arange(shape[0]) - origin_px) * pixel_um
    x = (np.arange(shape[1]) - origin_px) * pixel_um
    kx, ky = pattern.k_cycles_per_um
    arg = 2 * np.pi * (ky * y[:, None] + kx * x[None, :]) + phase
    out = np.ones(shape, dtype=np.float64)
    for b, m in enumerate(pattern.modulation, start=1):
        out += m * np.cos(b * arg)
    return out


def blur_and_sample(fine: np.ndarray, optics: Optics, otf: RadialOTF) -> np.ndarray:
    """Blur fine-grid images (..., 2Y, 2X) by OTF × pixel sinc; sample every 2nd pixel."""
    ny, nx = fine.shape[-2:]
    d = optics.pixel_size_um / 2
    fy = scipy.fft.fftfreq(ny, d)[:, None]
    fx = scipy.fft.rfftfreq(nx, d)[None, :]
    transfer = otf(np.hypot(fy, fx)) * np.sinc(fy * optics.pixel_size_um) * np.sinc(fx * optics.pixel_size_um)
    blurred = scipy.fft.irfft2(scipy.fft.rfft2(fine, workers=-1) * transfer, s=(ny, nx), workers=-1)
    return blurred[..., ::2, ::2]


def simulate_acquisition(
    structure: str = "filaments",
    size: int = 256,
    optics: Optics | None = None,
    n_angles: int = 3,
    n_phases: int = 3,
    photons: float = 1000.0,
    read_noise: float = 1.0,
    offset: float = 100.0,
    background_photons: float = 0.0,
    params: PatternParameters | None = None,
    truth: np.ndarray | None = None,
    otf: RadialOTF | None = None,
    seed: int | None = 0,
    noise: bool = True,
    imperfections: Imperfections | None = None,
) -> SimulatedAcquisition:
    """Simulate a raw SIM stack of ``size`` × ``size`` px.

    ``params``/``truth`` may be given (e.g. two noise realisations of one scene). Imperfections
    draw from their own random stream, so the object, parameters and (where the frames are
    unchanged) the noise are those of the clean case with the same seed.

    Parameters
    ----------
    structure : str
        Test object, one of :data:`STRUCTURES`.
    size : int
        Field side, camera px (at least 32).
    optics : Optics or None
        NA, emission wavelength (nm), camera pixel (µm); None: :data:`DEFAULT_OPTICS`.
    n_angles, n_phases : int
        Pattern angles and phases per angle; n_phases ≥ 5 simulates 3-beam data (orders 0, ±1,
        ±2), else 2-beam.
    photons : float
        Expected photon count at the brightest pixel of the brightest frame.
    read_noise : float
        Gaussian read noise σ, counts.
    offset : float
        Camera offset, counts.
    background_photons : float
        Uniform background added before the photon noise, photons per px.
    params : PatternParameters or None
        The pattern (k in cycles/µm, phases in radians); None: :func:`random_parameters`.
    truth : numpy.ndarray or None
        (2 size, 2 size) object on the fine grid, values in [0, 1]; None: drawn.
    otf : RadialOTF or None
        Detection OTF; None: the ideal one of ``optics``.
    seed : int or None
        Seed of the object, pattern and noise.
    noise : bool
        Add photon and read noise (False: the expected counts).
    imperfections : mismatch.Imperfections or None
        Realistic departures from the ideal model.

    Returns
    -------
    SimulatedAcquisition
        ``raw`` (A, P, Y, X) float32 counts, ``truth`` (2Y, 2X), the data's ``params``, and
        ``given_params`` carrying any simulated k/phase errors.
    """
    if size < 32:
        raise SimInputError("the simulated field must be at least 32 px")
    if photons <= 0:
        raise SimInputError("photons must be positive")
    optics = optics or DEFAULT_OPTICS
    otf = otf or ideal_otf(optics)
    rng = np.random.default_rng(seed)
    n_orders = 2 if n_phases >= 5 else 1
    params = params or random_parameters(optics, n_angles, n_phases, n_orders, rng=rng)
    imp = imperfections if imperfections is not None and imperfections.any else None
    irng = np.random.default_rng(None if seed is None else [seed, 0x5EED])  # the imperfections' own stream
    margin = 16
    full = size + 2 * margin
    fine_px = optics.pixel_size_um / 2
    if truth is None:
        obj = make_object(structure, (2 * full, 2 * full), fine_px, rng)
        if imp is not None and imp.border_structure:
            inner = (slice(2 * margin, 2 * (margin + size)),) * 2
            obj = mismatch.add_border_structure(obj, inner, imp.border_structure, fine_px, irng)
        truth = obj[2 * margin:2 * (margin + size), 2 * margin:2 * (margin + size)]
    else:
        obj = np.pad(truth, 2 * margin, mode="reflect")
    if imp is not None and (imp.envelope or imp.modulation_variation or imp.harmonic):
        env = mismatch.envelope_map(obj.shape, imp.envelope, irng) if imp.envelope else None
        mod = mismatch.modulation_map(obj.shape, imp.modulation_variation, irng) if imp.modulation_variation else None
        frames = np.stack([
            np.stack([obj * mismatch.real_illumination(obj.shape, fine_px, a, phi, 2 * margin, mod, env, imp.harmonic)
                      for phi in a.phases_rad])
            for a in params.angles
        ])
    else:
        frames = np.stack([
            np.stack([obj * illumination(obj.shape, fine_px, a, phi, origin_px=2 * margin) for phi in a.phases_rad])
            for a in params.angles
        ])
    blur_otf = mismatch.data_otf(optics, imp.otf_mismatch) if imp is not None and imp.otf_mismatch else otf
    clean = blur_and_sample(frames, optics, blur_otf)[..., margin:margin + size, margin:margin + size]
    clean = np.clip(clean, 0.0, None)
    clean *= photons / clean.max()
    gains = None
    given = None
    if imp is not None:
        if imp.background:
            clean += mismatch.haze(clean.shape[-2:], optics.pixel_size_um, imp.background * photons, irng)
        if imp.intensity_fluctuation:
            gains = mismatch.frame_gains(clean.shape[:2], imp.intensity_fluctuation, irng)
            clean *= gains[..., None, None]
        if imp.k_error or imp.phase_error:
            given = mismatch.perturbed_parameters(params, imp.k_error, imp.phase_error, irng)
    if noise:
        counts = rng.poisson(clean + background_photons).astype(np.float64)
        counts += rng.normal(0.0, read_noise, counts.shape) + offset
    else:
        counts = clean + background_photons + offset
    if imp is not None and imp.stripe:
        counts += mismatch.camera_stripe(counts.shape[-2:], imp.stripe * photons)
    if imp is not None and imp.resampled:
        counts = mismatch.upsample_and_bin(counts)
    return SimulatedAcquisition(
        raw=counts.astype(np.float32), truth=np.ascontiguousarray(truth, dtype=np.float32),
        params=params, optics=optics, photons=photons, offset=offset, read_noise=read_noise,
        given_params=given, imperfections=imp, frame_gains=gains,
    )
