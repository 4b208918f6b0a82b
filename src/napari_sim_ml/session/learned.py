"""Learned methods of the dock as plain generator functions (no Qt, no napari).

:func:`run_pinn` fits the untrained PINN on the job's current plane, :func:`run_training`
trains the raw-frame denoiser, :func:`run_apply` denoises the current plane and
reconstructs it. Each yields typed progress and returns a result or a :class:`Failure`.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.errors import SimInputError
from ..engine.parameters import FilterSettings, PatternParameters
from .tasks import Failure, Job


def run_pinn(job: Job, params: PatternParameters, settings: Any) -> Generator[Any, None, Any]:
    """Fit the PINN: yields PinnProgress, returns PinnResult or a Failure."""
    from ..engine.pinn import pinn_steps

    try:
        steps = pinn_steps(job.plane_frames(), job.optics, params, settings, job.make_otf(), job.background)
    except SimInputError as exc:
        return Failure(str(exc))
    try:
        return (yield from steps)
    except SimInputError as exc:
        return Failure(str(exc))
    finally:
        steps.close()  # frees the network also when the worker is cancelled


@dataclass(frozen=True)
class TrainRequest:
    """What to train the denoiser on, and where to write it."""

    source: str  # "simulation" | "thinning"
    structures: tuple[str, ...]
    photons: tuple[float, float]
    thin: float
    n_stacks: int
    settings: Any  # TrainSettings
    path: str


@dataclass(frozen=True)
class Cancelled:
    """Training stopped by the user; the checkpoint at ``path`` is kept."""

    path: str


@dataclass(frozen=True)
class ApplyOutput:
    """The current plane denoised, its reconstruction and the data-consistency flags."""

    denoised: np.ndarray  # (A·P, Y, X) counts
    image: np.ndarray  # (2Y, 2X) Wiener-SIM of the denoised frames
    flags: np.ndarray  # (Y, X) uint8
    summary: str


def run_training(job: Job, params: PatternParameters, req: TrainRequest,
                 stop: threading.Event) -> Generator[Any, None, Any]:
    """Train the denoiser: yields TrainProgress, returns TrainResult, Cancelled or a Failure."""
    from ..engine.denoise.data import simulated_set, thinned_set
    from ..engine.denoise.train import train_steps

    try:
        otf = job.make_otf()
        if req.source == "simulation":
            ts = simulated_set(job.optics, params, req.n_stacks, 2 * req.settings.patch, req.photons,
                               req.structures, otf=otf, seed=req.settings.seed)
        else:
            stacks = [job.plane_frames(i).reshape(-1, *job.frames.shape[-2:]) for i in range(job.n_planes)]
            ts, _ = thinned_set(stacks, req.thin, job.optics.pixel_size_um, otf.support_cycles_per_um,
                                job.background, names=[job.layer_name])
        steps = train_steps(ts, job.optics, params, req.settings, checkpoint=req.path)
    except SimInputError as exc:
        return Failure(str(exc))
    try:
        while True:
            if stop.is_set():
                steps.close()  # writes the checkpoint
                return Cancelled(req.path)
            try:
                progress = next(steps)
            except StopIteration as done:
                return done.value
            yield progress
    except SimInputError as exc:
        return Failure(str(exc))
    finally:
        steps.close()


def run_apply(job: Job, params: PatternParameters, model: str, settings: FilterSettings) -> ApplyOutput | Failure:
    """Denoise the current plane, reconstruct it and check it against the data."""
    from ..engine.denoise.apply import Denoiser, denoise_plane
    from ..engine.denoise.check import consistency_check, data_noise
    from ..engine.methods import MethodSettings, reconstruct_plane

    try:
        den = Denoiser.load(model)
        plane = job.plane_frames()
        dn = denoise_plane(plane, den, job.optics, params, job.background)
        image = reconstruct_plane(dn, job.optics, params, job.make_otf(), job.background,
                                  MethodSettings("wiener", "wiener", settings)).image
        gain, var0 = data_noise(plane, job.optics, den.meta.gain, job.background)
        rep = consistency_check(plane, dn, job.optics, params, gain, var0, job.background)
    except SimInputError as exc:
        return Failure(str(exc))
    return ApplyOutput(dn.reshape(-1, *dn.shape[-2:]), image, rep.flags, rep.summary())
