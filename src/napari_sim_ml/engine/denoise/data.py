"""Training data for the raw-frame denoiser (numpy only; no torch).

A training *example* is a clean stack ``(F, Y, X)`` (F = angles × phases, all frames of one
acquisition together, background-subtracted counts on the camera grid) plus the camera noise
model that turns it into a noisy stack. Noise is drawn afresh for every batch, so the network
never sees the same realisation twice:

* **simulation**: the project's forward model (:func:`..simulate.simulate_acquisition`,
  noise off) with the user's optics and pattern (k, phase steps, modulation; the absolute phase
  of every angle is randomised) on random objects; the noisy stack is
  ``gain · Poisson(clean / gain) + N(0, var0)``;
* **thinning** of the user's high-SNR stacks: with the photon-transfer noise model of the high
  stack, photons ``n = (high − offset) / gain`` are thinned binomially with probability 1/s
  (exactly Poisson(λ/s) for Poisson n), read noise is added; the target is ``(high − offset)/s``.

Augmentation is by 90° rotations and flips only, applied to all frames of a stack together (the
pattern rotates with the frames; no frame is interpolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SimInputError
from ..otf import RadialOTF
from ..parameters import AnglePattern, Optics, PatternParameters, wrap_phase
from ..pinn.noise import NoiseModel, estimate_noise
from ..simulate import make_object, simulate_acquisition

STRUCTURES = ("filaments", "rings", "mesh", "bundles")


@dataclass(frozen=True)
class TrainingSet:
    """Clean stacks and how to make them noisy.

    clean: (N, F, Y, X) float32, expected background-subtracted counts.
    gain, var0: camera noise model v(μ) = gain·μ + var0 (counts²) of the noisy input.
    thin: photons are thinned by this factor (1 = simulation: the noisy stack is drawn directly
        around ``clean``); for thinning ``clean`` holds the high-SNR stack divided by ``thin``.
    photons: (N,) peak photons of each example (informative).
    description: a JSON-serialisable account of how the set was made (stored in checkpoints).
    """

    clean: np.ndarray
    gain: float
    var0: float
    thin: float = 1.0
    photons: np.ndarray | None = None
    description: dict = field(default_factory=dict)
    high: np.ndarray | None = None  # thinning: the high-SNR photons (N, F, Y, X), integers

    @property
    def n_frames(self) -> int:
        """Frames per sample (angles × phases)."""
        """Frames per sample (angles × phases)."""
        return int(self.clean.shape[1])


def make_bundles(shape: tuple[int, int], pixel_um: float, rng: np.random.Generator) -> np.ndarray:
    """Actin-like bundles: groups of 3–8 nearly parallel, gently curved filaments 60–150 nm apart.

    shape: fine-grid (Y, X); pixel_um: fine pixel (µm). Values in [0, 1].
    """
    from scipy.ndimage import gaussian_filter
    from skimage.draw import line_aa

    ny, nx = shape
    img = np.zeros(shape, dtype=np.float64)
    n_bundles = max(2, int(ny * nx * pixel_um**2 / 12.0))
    length = 1.5 * max(ny, nx)
    for _ in range(n_bundles):
        c = rng.uniform((0, 0), (ny, nx))
        theta = rng.uniform(0, np.pi)
        curve = rng.normal(0, 0.3 * pixel_um)  # curvature, rad per px
        n_fil = int(rng.integers(3, 9))
        spacing = rng.uniform(0.06, 0.15) / pixel_um
        for j in range(n_fil):
            off = (j - (n_fil - 1) / 2) * spacing + rng.normal(0, 0.2 * spacing)
            t = np.linspace(-length / 2, length / 2, 200)
            ang = theta + curve * t
            y = c[0] + np.cumsum(np.sin(ang)) * (t[1] - t[0]) - np.sin(theta) * length / 2 + off * np.cos(theta)
            x = c[1] + np.cumsum(np.cos(ang)) * (t[1] - t[0]) - np.cos(theta) * length / 2 - off * np.sin(theta)
            value = rng.uniform(0.4, 1.0)
            for y0, x0, y1, x1 in zip(y[:-1], x[:-1], y[1:], x[1:], strict=False):
                rr, cc, val = line_aa(int(round(y0)), int(round(x0)), int(round(y1)), int(round(x1)))
                ok = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
                np.maximum.at(img, (rr[ok], cc[ok]), val[ok] * value)
    img = gaussian_filter(img, 0.6)
    return (img / max(img.max(), 1e-12)).astype(np.float32)


def random_object(structure: str, shape: tuple[int, int], pixel_um: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a test object of one of :data:`STRUCTURES` on the fine grid, values in [0, 1]."""
    if structure == "bundles":
        return make_bundles(shape, pixel_um, rng)
    if structure not in STRUCTURES:
        raise SimInputError(f"unknown structure '{structure}'; choose from {', '.join(STRUCTURES)}")
    return make_object(structure, shape, pixel_um, rng)


def _random_phase_offset(params: PatternParameters, rng: np.random.Generator) -> PatternParameters:
    """Return the same k, steps and modulation with a random absolute phase per angle."""
    out = []
    for a in params.angles:
        off = rng.uniform(-np.pi, np.pi)
        out.append(AnglePattern(a.k_cycles_per_um, tuple(wrap_phase(p + off) for p in a.phases_rad), a.modulation))
    return PatternParameters(tuple(out))


def simulated_set(
    optics: Optics,
    params: PatternParameters,
    n: int,
    size: int = 64,
    photons: tuple[float, float] = (30.0, 200.0),
    structures: tuple[str, ...] = ("filaments", "rings", "mesh"),
    read_noise: float = 1.0,
    gain: float = 1.0,
    background_fraction: float = 0.05,
    otf: RadialOTF | None = None,
    seed: int = 0,
) -> TrainingSet:
    """``n`` simulated clean stacks of ``size``² camera pixels with the user's optics and pattern.

    photons: (low, high) peak photons, drawn log-uniformly per example (equal values: fixed).
    structures: cycled through the examples. background_fraction: a uniform background of up to
    this fraction of the peak (photons). gain: counts per photon of the camera (noisy stacks).
    """
    if n < 1:
        raise SimInputError("the number of simulated training stacks must be at least 1")
    lo, hi = sorted(float(p) for p in photons)
    if lo <= 0:
        raise SimInputError("training photons must be positive")
    rng = np.random.default_rng(seed)
    fine_px = optics.pixel_size_um / 2
    clean, peaks = [], []
    for i in range(n):
        structure = structures[i % len(structures)]
        p = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else lo
        truth = random_object(structure, (2 * size, 2 * size), fine_px, rng)
        sim = simulate_acquisition(structure, size, optics, params.n_angles, params.n_phases, photons=p,
                                   read_noise=0.0, offset=0.0,
                                   background_photons=rng.uniform(0, background_fraction) * p,
                                   params=_random_phase_offset(params, rng), truth=truth, otf=otf,
                                   seed=int(rng.integers(2**31)), noise=False)
        clean.append(sim.raw.reshape(-1, size, size) * gain)
        peaks.append(p)
    desc = {"source": "simulation", "n": n, "size": size, "photons": [lo, hi], "structures": list(structures),
            "read_noise": read_noise, "gain": gain, "background_fraction": background_fraction, "seed": seed}
    return TrainingSet(np.stack(clean).astype(np.float32), gain=float(gain), var0=float(read_noise**2),
                       photons=np.array(peaks), description=desc)


def thinned_set(
    stacks: list[np.ndarray],
    thin: float,
    pixel_size_um: float,
    support_cycles_per_um: float,
    background: float = 0.0,
    noise: NoiseModel | None = None,
    names: list[str] | None = None,
    read_var: float | None = None,
) -> tuple[TrainingSet, NoiseModel]:
    """Training set from high-SNR stacks (each (F, Y, X) raw counts) by Poisson thinning by ``thin``.

    background: camera offset (counts). noise: the camera noise model of the high stacks
    (gain, var0); estimated by a photon-transfer fit on the first stack when omitted.
    read_var: the constant noise variance (counts²) added to the thinned frames, i.e. the var0 of
    the low-light data the denoiser is for (e.g. fitted on a low-light stack); default: the high
    stacks' var0 (which can be far too large: on the real 3-beam set the high-light fit gave 314
    counts², the low-light frames ≈ 0).
    Returns the set and the noise model used.
    """
    if thin < 1.0:
        raise SimInputError("the thinning factor must be at least 1")
    shapes = {s.shape for s in stacks}
    if not stacks or len(shapes) != 1 or len(stacks[0].shape) != 3:
        raise SimInputError("the high-light stacks must all have the same shape (frames, Y, X)")
    data = np.stack([np.asarray(s, dtype=np.float64) - background for s in stacks])
    if noise is None:
        noise = estimate_noise(data[0], pixel_size_um, support_cycles_per_um)
    if noise.gain <= 0:
        raise SimInputError("the noise model of the high-light stacks has no positive gain")
    photons = np.rint(np.clip(data, 0, None) / noise.gain)
    # read noise of the camera: var0 = σ_r² − gain·(offset left in the data); ≥ 0
    var0 = max(float(noise.var0 if read_var is None else read_var), 0.0)
    desc = {"source": "thinning", "n": len(stacks), "thin": float(thin), "gain": noise.gain, "var0": noise.var0,
            "noise_reliable": noise.reliable, "read_var": var0, "background": background,
            "stacks": names or []}
    ts = TrainingSet((photons * noise.gain / thin).astype(np.float32), gain=float(noise.gain), var0=var0,
                     thin=float(thin), description=desc, high=photons.astype(np.int64))
    return ts, noise


def dihedral(stack: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 rotations/flips (k in 0..7) of the last two axes, applied to all frames together."""
    out = np.rot90(stack, k % 4, axes=(-2, -1))
    return out[..., ::-1] if k >= 4 else out


def sample_batch(ts: TrainingSet, batch: int, patch: int, rng: np.random.Generator,
                 augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Draw a batch of (noisy, clean) patches, each (batch, F, patch, patch) float32 counts.

    Patches are random crops at the camera grid (all frames together), augmented (``augment``)
    by one of the 8 dihedral transforms; the noise is drawn afresh from the set's noise model.
    """
    n, f, ny, nx = ts.clean.shape
    if patch > min(ny, nx):
        raise SimInputError(f"the patch ({patch} px) is larger than the training stacks ({ny}×{nx} px)")
    noisy = np.empty((batch, f, patch, patch), np.float32)
    clean = np.empty_like(noisy)
    for b in range(batch):
        i = int(rng.integers(n))
        y, x = int(rng.integers(ny - patch + 1)), int(rng.integers(nx - patch + 1))
        k = int(rng.integers(8)) if augment else 0
        c = dihedral(ts.clean[i, :, y:y + patch, x:x + patch], k)
        if ts.high is not None:
            hp = dihedral(ts.high[i, :, y:y + patch, x:x + patch], k)
            photons = rng.binomial(hp, 1.0 / ts.thin)
        else:
            photons = rng.poisson(np.clip(c, 0, None) / ts.gain)
        z = photons * ts.gain
        if ts.var0 > 0:
            z = z + rng.normal(0.0, math.sqrt(ts.var0), z.shape)
        noisy[b] = z
        clean[b] = c
    return noisy, clean


__all__ = ["STRUCTURES", "TrainingSet", "make_bundles", "random_object", "simulated_set", "thinned_set",
           "dihedral", "sample_batch"]
