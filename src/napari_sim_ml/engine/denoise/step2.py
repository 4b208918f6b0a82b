"""Optional step 2 of the two-step method: a denoiser of the reconstruction (numpy; torch lazily).

Step 2 maps a classical reconstruction (2× grid) to the SIM-passband truth of the same object.
**It can distort true structures**: in the published re-implementation (Hughes 2024, of Li et
al. 2023) it moved and shortened needles and smoothed textures, and a model trained on mixed
structures did worse on each. Every front end therefore shows :data:`WARNING` once per use and
keeps the plain reconstruction beside the step-2 output; :mod:`.step2_check` re-images the output
against the measured frames.

* **Training pairs** (:func:`step2_set`): the project's simulator with the user's optics and
  pattern (absolute phases randomised) on random objects of the chosen structures, noisy at the
  chosen photons; input = the reconstruction of the noisy stack by the given method (default: the
  command line's Wiener pipeline, w chosen from the noise; optionally after a step-1 denoiser);
  target = the SIM-passband truth (:func:`..metrics.sim_passband_truth`), matched in gain and
  offset to the input by least squares (a reconstruction's intensity scale is arbitrary). Both are
  normalised by the input's 2nd and 99.9th percentiles (mapped to 0 and 1) and cropped by
  ``crop`` camera px at each border (the periodic filters wrap there).
* **Network**: the step-1 :class:`.model.DenoiseNet` with one channel in and out (residual: an
  untrained network is the identity); checkpoints are step-1 files with ``kind = "step2"``.
* **Application** (:func:`apply_step2`): the same normalisation, tiled inference through
  :func:`.apply.denoise_frames`, and the input's percentile scale restored.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SimInputError
from ..methods import MethodSettings, reconstruct_plane
from ..metrics import sim_passband_truth
from ..otf import RadialOTF, ideal_otf
from ..parameters import AnglePattern, Optics, PatternParameters, wrap_phase
from ..simulate import simulate_acquisition
from .checkpoint import DenoiserMeta, check_compatible, load_checkpoint
from .data import STRUCTURES, random_object

WARNING_TEXT = ("step 2 (a denoiser of the reconstruction) can distort true structures — in the literature it "
                "moved and shortened needles and smoothed textures, and a model trained on mixed structures did "
                "worse on each; compare it with the plain reconstruction")
WARNING = "warning: " + WARNING_TEXT  # the command line's one stderr line
PERCENTILES = (2.0, 99.9)
NORMALISATION_RULE = "(image - p2) / (p99.9 - p2) of the input reconstruction; the output scaled back alike"


@dataclass(frozen=True)
class Step2Set:
    """Step-2 training pairs on the 2× grid, normalised.

    inputs, targets: (N, Y, X) float32 (input: the reconstruction; target: the passband truth
    matched to it). photons: (N,) peak photons. structures: (N,) the structure of each pair.
    description: JSON-ready account of how the set was made (stored in the checkpoint).
    """

    inputs: np.ndarray
    targets: np.ndarray
    photons: np.ndarray
    structures: tuple[str, ...]
    description: dict = field(default_factory=dict)


def _random_phases(params: PatternParameters, rng: np.random.Generator) -> PatternParameters:
    """Return the same k, phase steps and modulation with a random absolute phase per angle."""
    return PatternParameters(tuple(
        AnglePattern(a.k_cycles_per_um, tuple(wrap_phase(p + off) for p in a.phases_rad), a.modulation)
        for a, off in zip(params.angles, rng.uniform(-np.pi, np.pi, params.n_angles), strict=True)))


def percentile_scale(image: np.ndarray, crop: int = 0) -> tuple[float, float]:
    """(p2, p99.9 − p2) of ``image`` without ``crop`` border px; a flat image is a SimInputError."""
    a = np.asarray(image, dtype=np.float64)
    if crop and min(a.shape[-2:]) > 4 * crop:
        a = a[..., crop:-crop, crop:-crop]
    lo, hi = np.percentile(a, PERCENTILES)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 1e-12 * max(abs(hi), 1.0):
        raise SimInputError("the reconstruction is flat (or not finite): step 2 has nothing to work on")
    return float(lo), float(hi - lo)


def matched_target(truth_passband: np.ndarray, image: np.ndarray, crop: int = 0) -> np.ndarray:
    """Map the passband truth onto ``image`` by a least-squares gain and offset (inside ``crop``)."""
    sl = (slice(crop, -crop or None), slice(crop, -crop or None))
    t = np.asarray(truth_passband, dtype=np.float64)
    x = np.asarray(image, dtype=np.float64)
    a = np.vstack([t[sl].ravel(), np.ones(t[sl].size)]).T
    (g, b), *_ = np.linalg.lstsq(a, x[sl].ravel(), rcond=None)
    return (g * t + b).astype(np.float32)


def step2_set(
    optics: Optics,
    params: PatternParameters,
    n: int,
    size: int = 64,
    photons: tuple[float, float] = (30.0, 200.0),
    structures: tuple[str, ...] = ("filaments", "rings", "mesh"),
    method: MethodSettings | None = None,
    step1: Any = None,
    step1_name: str | None = None,
    otf: RadialOTF | None = None,
    read_noise: float = 1.0,
    background_fraction: float = 0.05,
    crop: int = 8,
    seed: int = 0,
) -> Step2Set:
    """``n`` training pairs from stacks of ``size``² camera px (pairs: (2·size − 4·crop)² px, 2× grid).

    photons: (low, high) peak photons, log-uniform per pair. structures: cycled through the pairs.
    method: the reconstruction the model will be applied after (default: Wiener, w chosen from
    the noise, as ``reconstruct`` does without ``--wiener``). step1: a loaded step-1
    :class:`.apply.Denoiser` applied to the noisy frames first (step 2 after step 1), or None;
    step1_name: its file name (recorded). crop: border px of the 2× grid left out.
    """
    if n < 1:
        raise SimInputError("the number of simulated training stacks must be at least 1")
    if size < 32:
        raise SimInputError("step-2 training stacks must be at least 32 camera px")
    bad = [s for s in structures if s not in STRUCTURES]
    if bad or not structures:
        raise SimInputError(f"unknown structure '{bad[0] if bad else ''}'; choose from {', '.join(STRUCTURES)}")
    lo, hi = sorted(float(p) for p in photons)
    if lo <= 0:
        raise SimInputError("training photons must be positive")
    method = method or MethodSettings.from_flags()
    if method.name != "wiener":
        raise SimInputError("step 2 is trained on classical (Wiener or hifi) reconstructions")
    otf = otf or ideal_otf(optics)
    if step1 is not None:
        check_compatible(step1.meta, optics, params)
    rng = np.random.default_rng(seed)
    inputs, targets, peaks, kinds = [], [], [], []
    c = 2 * crop
    for i in range(n):
        structure = structures[i % len(structures)]
        p = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else lo
        truth = random_object(structure, (2 * size, 2 * size), optics.pixel_size_um / 2, rng)
        pattern = _random_phases(params, rng)
        sim = simulate_acquisition(structure, size, optics, params.n_angles, params.n_phases, photons=p,
                                   read_noise=read_noise, background_photons=rng.uniform(0, background_fraction) * p,
                                   params=pattern, truth=truth, otf=otf, seed=int(rng.integers(2**31)))
        raw = sim.raw
        if step1 is not None:
            from .apply import denoise_plane

            raw = denoise_plane(raw, step1, optics, pattern, sim.offset)
        image = reconstruct_plane(raw, optics, pattern, otf, sim.offset, method).image
        target = matched_target(sim_passband_truth(sim.truth, optics, pattern), image, c)
        lo_i, span = percentile_scale(image, c)
        inputs.append(((image - lo_i) / span)[c:-c or None, c:-c or None])
        targets.append(((target - lo_i) / span)[c:-c or None, c:-c or None])
        peaks.append(p)
        kinds.append(structure)
    desc = {"source": "simulation", "n": n, "size": size, "photons": [lo, hi], "structures": list(structures),
            "read_noise": read_noise, "background_fraction": background_fraction, "crop": crop, "seed": seed,
            "input": "step1 + " + method.form if step1 is not None else method.form,
            "step1_model": step1_name if step1 is not None else None}
    return Step2Set(np.stack(inputs).astype(np.float32), np.stack(targets).astype(np.float32), np.array(peaks),
                    tuple(kinds), desc)


def method_record(method: MethodSettings) -> dict[str, Any]:
    """Return the reconstruction a step-2 model is trained for, as stored in its checkpoint."""
    return {"method": method.name, "form": method.form, "auto_wiener": method.auto_wiener,
            "settings": asdict(method.filter)}


def step2_meta(optics: Optics, params: PatternParameters, net: dict, method: MethodSettings,
               step1: bool, training: dict | None = None) -> DenoiserMeta:
    """Return the checkpoint metadata of a step-2 model (kind "step2"; gain 1, no photon normalisation)."""
    return DenoiserMeta(optics, params, 1.0, 0.0, 1.0, net, dict(training or {}), kind="step2",
                        step2={"filter": method_record(method), "after_step1": bool(step1),
                               "normalisation": {"rule": NORMALISATION_RULE, "percentiles": list(PERCENTILES)}})


def check_step2(meta: DenoiserMeta, optics: Optics, params: PatternParameters | None, method: MethodSettings,
                step1: bool | None = None) -> list[str]:
    """Refuse (SimInputError, one line) a step-2 model for other optics, pattern or method.

    Optics and pattern have step 1's tolerances (:func:`.checkpoint.check_compatible`); the
    method must be a classical filter of the form it was trained on. Returns notes (one line
    each) on softer differences: other filter settings, with/without step 1.
    """
    if meta.kind != "step2":
        raise SimInputError("this is a step-1 model (a raw-frame denoiser), not a step-2 model; use it as --denoiser")
    check_compatible(meta, optics, params, params.n_angles if params else None, params.n_phases if params else None)
    trained = meta.step2.get("filter", {})
    if method.name != "wiener":
        raise SimInputError(f"step 2 was trained on {trained.get('form', 'wiener')} reconstructions, not on the "
                            f"{method.name}; reconstruct with --method wiener")
    if trained.get("form", "wiener") != method.form:
        raise SimInputError(f"the step-2 model was trained on the {trained.get('form')} filter, not {method.form}; "
                            f"use --filter {trained.get('form')} or train step 2 for this filter")
    notes = []
    mine = method_record(method)

    def w_text(rec: dict) -> str:
        return "w chosen from the noise" if rec.get("auto_wiener") else f"w {rec.get('settings', {}).get('wiener')}"

    if w_text(trained) != w_text(mine):
        notes.append(f"note: the step-2 model was trained with {w_text(trained)}, this reconstruction uses "
                     f"{w_text(mine)}")
    others = [k for k in ("apo_cutoff", "apo_bend", "attenuation", "attenuation_fwhm")
              if trained.get("settings", {}).get(k) is not None
              and abs(trained["settings"][k] - mine["settings"][k]) > 1e-9]
    if others:
        notes.append(f"note: the step-2 model was trained with other {', '.join(o.replace('_', ' ') for o in others)}")
    if step1 is not None and bool(meta.step2.get("after_step1")) != step1:
        notes.append("note: the step-2 model was trained " + ("after" if meta.step2.get("after_step1") else "without")
                     + " a step-1 denoiser, and is applied " + ("after one" if step1 else "without one"))
    return notes


def load_step2(path: str | Path, device: str = "auto") -> Any:
    """Load a step-2 checkpoint as an :class:`.apply.Denoiser`; a step-1 file is refused with one line."""
    from .apply import Denoiser

    meta, weights, _, _ = load_checkpoint(path, kind="step2")
    return Denoiser.from_weights(meta, weights, device)


def support_limit(image: np.ndarray, optics: Optics, params: PatternParameters) -> np.ndarray:
    """Remove what lies beyond the SIM support |f| > kc + k_top from 2×-grid images (..., 2Y, 2X).

    No measured frame carries frequencies there, so whatever a network puts there is invented.
    The periodic part of the periodic-plus-smooth decomposition is filtered (no border cross);
    the smooth part (the border jumps, slowly varying) is kept.
    """
    import scipy.fft

    from ..bands import periodic_smooth

    arr = np.asarray(image, dtype=np.float32)
    per, smooth = periodic_smooth(arr)
    k_top = max(a.k_magnitude for a in params.angles) * params.n_orders
    px = optics.pixel_size_um / 2.0
    ny, nx = arr.shape[-2:]
    f = np.hypot(scipy.fft.fftfreq(ny, px)[:, None], scipy.fft.rfftfreq(nx, px)[None, :])
    inside = f <= optics.cutoff_cycles_per_um + k_top
    out = scipy.fft.irfft2(scipy.fft.rfft2(per, axes=(-2, -1)) * inside, s=(ny, nx), axes=(-2, -1)) + smooth
    return out.astype(np.float32)


def apply_step2(image: np.ndarray, den: Any, tile: int = 256, overlap: int = 32, crop: int = 8,
                threads: int | None = None, band_limit: bool = True) -> np.ndarray:
    """Step 2 on reconstructions (..., 2Y, 2X) → the same shape, float32, in the input's units.

    den: a step-2 model (:func:`load_step2`). tile, overlap: inference tiles (2×-grid px). crop:
    border camera px left out of the percentiles. threads: CPU threads (None: see ``train.cpu_threads``).
    band_limit: remove the output's content beyond the SIM support of the optics and pattern the
    model was trained for (:func:`support_limit`; the passband truth it was trained on has none,
    but on real data the network put texture there).
    """
    from .apply import denoise_frames

    if getattr(den.meta, "kind", "step1") != "step2":
        raise SimInputError("the model is not a step-2 model")
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim < 2:
        raise SimInputError("step 2 needs a 2-D reconstruction")
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.empty_like(flat)
    for i, img in enumerate(flat):
        lo, span = percentile_scale(img, 2 * crop)
        x = ((img - lo) / span).astype(np.float32)[None, None]
        out[i] = denoise_frames(x, den, 0.0, tile, overlap, threads=threads)[0, 0] * span + lo
    if band_limit:
        out = support_limit(out, den.meta.optics, den.meta.params)
    return out.reshape(arr.shape)


__all__ = ["WARNING", "WARNING_TEXT", "PERCENTILES", "Step2Set", "percentile_scale", "matched_target", "step2_set",
           "method_record", "step2_meta", "check_step2", "load_step2", "support_limit", "apply_step2"]
