"""Denoiser checkpoints: one file with the weights and everything needed to apply them.

The file (``torch.save`` of a plain dict, read back with ``weights_only=True``) holds the format
name and version, the network configuration and weights, the optics and pattern it was trained
for, the normalisation, the camera noise model, the training-data description, the loss history
and (for resuming) the optimiser state. This module's metadata side is numpy-only; torch is
imported inside :func:`save_checkpoint` / :func:`load_checkpoint`.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SimInputError
from ..parameters import Optics, PatternParameters, wrap_phase

FORMAT = "napari-sim-ml raw-frame denoiser"
VERSION = 2  # 2: the network may have NetConfig.full / full_convs, and a kind (step 2); version-1 readers refuse both
KINDS = ("step1", "step2")  # step 1: raw frames → raw frames; step 2: reconstruction → reconstruction
OPTICS_TOLERANCE = 0.03  # relative, NA / wavelength / pixel size
K_TOLERANCE = 0.03  # relative |k|
ANGLE_TOLERANCE_DEG = 3.0
STEP_TOLERANCE_RAD = 0.35


@dataclass(frozen=True)
class DenoiserMeta:
    """What a trained denoiser expects of its input.

    optics, params: what it was trained for (params: k, phase steps and modulation per angle;
        the absolute phases were randomised in training).
    gain, var0: camera noise model v(μ) = gain·μ + var0 (counts²) of the training input.
    ref_photons: normalisation; the network sees (counts − background) / gain / ref_photons.
    net: the network configuration (NetConfig fields). training: the data description, epochs,
        seconds, loss history.
    kind: "step1" (raw-frame denoiser; files without a kind) or "step2" (a denoiser of the
        reconstruction on the 2× grid). step2: a step-2 model's reconstruction filter, input
        chain and normalisation (empty for step 1).
    """

    optics: Optics
    params: PatternParameters
    gain: float
    var0: float
    ref_photons: float
    net: dict
    training: dict = field(default_factory=dict)
    kind: str = "step1"
    step2: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Frames per plane the denoiser takes: angles × phases (step 2: the one reconstruction)."""
        if self.kind == "step2":
            return int(self.net.get("n_frames", 1))
        return self.params.n_angles * self.params.n_phases

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (format, version, optics, pattern, noise model, normalisation, net)."""
        """JSON-ready metadata (format, version, optics, pattern, noise model, normalisation, net)."""
        out = {"format": FORMAT, "version": VERSION, "optics": asdict(self.optics),
               "params": self.params.to_dict(), "noise": {"gain": self.gain, "var0": self.var0},
               "normalisation": {"ref_photons": self.ref_photons,
                                 "rule": "(counts - background) / gain / ref_photons"},
               "net": dict(self.net), "training": dict(self.training), "kind": self.kind}
        if self.kind == "step2":  # older versions must refuse a step-2 file rather than apply it to raw frames
            out.update(step2=dict(self.step2),
                       normalisation={"ref_photons": self.ref_photons,
                                      "rule": self.step2.get("normalisation", {}).get("rule", "")})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DenoiserMeta:
        """Inverse of :meth:`to_dict`; a missing or malformed field is a SimInputError."""
        """Inverse of :meth:`to_dict`; a missing or malformed field is a SimInputError."""
        kind = d.get("kind", "step1")
        if kind not in KINDS:
            raise SimInputError(f"the denoiser file is of an unknown kind '{kind}'; update napari-sim-ml")
        try:
            return cls(optics=Optics(**d["optics"]), params=PatternParameters.from_dict(d["params"]),
                       gain=float(d["noise"]["gain"]), var0=float(d["noise"]["var0"]),
                       ref_photons=float(d["normalisation"]["ref_photons"]), net=dict(d["net"]),
                       training=dict(d.get("training", {})), kind=str(kind), step2=dict(d.get("step2") or {}))
        except (KeyError, TypeError) as exc:
            raise SimInputError(f"the denoiser file lacks a required field: {exc}") from None


def _angle_mod180(kx: float, ky: float) -> float:
    return math.degrees(math.atan2(ky, kx)) % 180.0


def _steps(phases: tuple[float, ...]) -> list[float]:
    return [wrap_phase(p - phases[0]) for p in phases[1:]]


def check_compatible(meta: DenoiserMeta, optics: Optics, params: PatternParameters | None,
                     n_angles: int | None = None, n_phases: int | None = None) -> None:
    """Refuse (SimInputError, one sentence) data whose optics, frame layout or pattern differ.

    The pattern may be any 90° rotation or flip of the trained one when it was trained with that
    augmentation;
    |k| within 3 %, directions within 3°, phase steps within 0.35 rad (either sign).
    """
    for name, a, b in (("NA", meta.optics.na, optics.na), ("wavelength", meta.optics.wavelength_nm,
                       optics.wavelength_nm), ("pixel size", meta.optics.pixel_size_um, optics.pixel_size_um)):
        if abs(a - b) > OPTICS_TOLERANCE * abs(a):
            raise SimInputError(f"the denoiser was trained for {name} {a:g} but the data have {b:g} "
                                f"(tolerance {OPTICS_TOLERANCE:.0%}); train a denoiser for these optics")
    tp = meta.params
    na = params.n_angles if params is not None else n_angles
    nph = params.n_phases if params is not None else n_phases
    if (na, nph) != (tp.n_angles, tp.n_phases):
        raise SimInputError(f"the denoiser was trained for {tp.n_angles} angles × {tp.n_phases} phases but the "
                            f"data have {na} × {nph}")
    if params is None:
        return
    worst_k = max(abs(a.k_magnitude - b.k_magnitude) / b.k_magnitude
                  for a, b in zip(params.angles, tp.angles, strict=False))
    if worst_k > K_TOLERANCE:
        raise SimInputError(f"the pattern period differs from the denoiser's by {worst_k:.1%} "
                            f"(tolerance {K_TOLERANCE:.0%}); train a denoiser for this pattern")
    trained = [_angle_mod180(*b.k_cycles_per_um) for b in tp.angles]
    data = [_angle_mod180(*a.k_cycles_per_um) for a in params.angles]
    best = 180.0
    augmented = bool(meta.training.get("augment", True))
    for mirror in (1, -1) if augmented else (1,):
        for rot in (0, 90) if augmented else (0,):
            diff = max(abs(((mirror * t + rot) - d + 90.0) % 180.0 - 90.0) for t, d in zip(trained, data, strict=False))
            best = min(best, diff)
    if best > ANGLE_TOLERANCE_DEG:
        raise SimInputError(f"the pattern angles {', '.join(f'{d:.1f}°' for d in data)} differ from the "
                            f"denoiser's {', '.join(f'{t:.1f}°' for t in trained)} by {best:.1f}°"
                            + (" even after 90° rotations and flips" if augmented else "")
                            + f" (tolerance {ANGLE_TOLERANCE_DEG:g}°)")
    worst_step = 0.0
    for mine, theirs in zip(params.angles, tp.angles, strict=False):
        sa, sb = _steps(mine.phases_rad), _steps(theirs.phases_rad)
        dev = min(max(abs(wrap_phase(x - s * y)) for x, y in zip(sa, sb, strict=False)) for s in (1, -1))
        worst_step = max(worst_step, dev)
    if worst_step > STEP_TOLERANCE_RAD:
        raise SimInputError(f"the phase steps differ from the denoiser's by {worst_step:.2f} rad "
                            f"(tolerance {STEP_TOLERANCE_RAD} rad); check the frame order or retrain")


def save_checkpoint(path: str | Path, meta: DenoiserMeta, weights: dict, optimizer: dict | None = None,
                    state: dict | None = None) -> Path:
    """Write the checkpoint atomically (temporary name, then rename)."""
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    blob = {**meta.to_dict(), "weights": weights, "optimizer": optimizer, "state": state or {}}
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, kind: str = "step1") -> tuple[DenoiserMeta, dict, dict | None, dict]:
    """(meta, weights, optimiser state or None, training state) from a checkpoint file.

    kind: the kind of model the caller applies ("step1": raw frames, the default; "step2": the
    reconstruction); a file of the other kind is refused with one line (files without a kind are step 1).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise SimInputError(f"denoiser file not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as exc:
        raise SimInputError(f"{path.name} is not a readable denoiser file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise SimInputError(f"{path.name} is not a napari-sim-ml denoiser file")
    if int(blob.get("version", 0)) > VERSION:
        raise SimInputError(f"{path.name} was written by a newer version (format {blob['version']}); update")
    meta = DenoiserMeta.from_dict(blob)
    if meta.kind != kind:
        raise SimInputError(WRONG_KIND[meta.kind].format(name=path.name))
    return meta, blob["weights"], blob.get("optimizer"), blob.get("state") or {}


WRONG_KIND = {
    "step2": "{name} is a step-2 model (it denoises the reconstruction, not the raw frames); use it as step 2 "
             "(--step2, or 'Apply step 2' in the dock)",
    "step1": "{name} is a step-1 model (a raw-frame denoiser), not a step-2 model; use it as the "
             "denoiser of the raw frames (--denoiser)",
}


__all__ = ["FORMAT", "VERSION", "KINDS", "DenoiserMeta", "check_compatible", "save_checkpoint", "load_checkpoint"]
