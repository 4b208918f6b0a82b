"""Learned methods of the dock as plain generator functions (no Qt, no napari).

:func:`run_pinn` fits the untrained PINN on the job's current plane, :func:`run_training`
trains the raw-frame denoiser, :func:`run_apply` denoises the current plane and
reconstructs it (and, given a step-2 model, applies step 2 to that reconstruction);
:func:`run_step2` applies step 2 alone to the plain reconstruction of the current plane. Each
yields typed progress and returns a result or a :class:`Failure`.
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

    source: str  # "simulation" | "thinning" | "step2" (simulated reconstructions → passband truth)
    structures: tuple[str, ...]
    photons: tuple[float, float]
    thin: float
    n_stacks: int
    settings: Any  # TrainSettings
    path: str
    filter: FilterSettings | None = None  # step 2: the Wiener settings of the reconstructions it is trained on


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
    step2: Step2Output | None = None  # step 2 on ``image``, when a step-2 model was given


@dataclass(frozen=True)
class Step2Output:
    """Step 2 on one reconstruction: its input, its output, the re-imaging check and any notes."""

    plain: np.ndarray  # (2Y, 2X) the reconstruction step 2 was applied to
    image: np.ndarray  # (2Y, 2X) step 2's output
    flags: np.ndarray  # (Y, X) uint8, the re-imaging check's flags (camera grid)
    summary: str
    notes: tuple[str, ...] = ()


def run_training(job: Job, params: PatternParameters, req: TrainRequest,
                 stop: threading.Event) -> Generator[Any, None, Any]:
    """Train the denoiser (or step 2): yields TrainProgress, returns TrainResult, Cancelled or a Failure."""
    from ..engine.denoise.data import simulated_set, thinned_set
    from ..engine.denoise.train import train_steps

    try:
        otf = job.make_otf()
        if req.source == "step2":
            from ..engine.denoise.step2 import step2_set
            from ..engine.denoise.step2_train import step2_steps
            from ..engine.methods import MethodSettings

            method = MethodSettings("wiener", "wiener", req.filter or FilterSettings())
            pairs = step2_set(job.optics, params, req.n_stacks, max(32, req.settings.patch), req.photons,
                              req.structures, method=method, otf=otf, seed=req.settings.seed)
            steps = step2_steps(pairs, job.optics, params, req.settings, method, checkpoint=req.path)
        elif req.source == "simulation":
            ts = simulated_set(job.optics, params, req.n_stacks, 2 * req.settings.patch, req.photons,
                               req.structures, otf=otf, seed=req.settings.seed)
        else:
            stacks = [job.plane_frames(i).reshape(-1, *job.frames.shape[-2:]) for i in range(job.n_planes)]
            ts, _ = thinned_set(stacks, req.thin, job.optics.pixel_size_um, otf.support_cycles_per_um,
                                job.background, names=[job.layer_name])
        if req.source != "step2":
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


def run_apply(job: Job, params: PatternParameters, model: str, settings: FilterSettings,
              step2: str | None = None) -> ApplyOutput | Failure:
    """Denoise the current plane, reconstruct it and check it against the data; then step 2 if given."""
    from ..engine.denoise.apply import Denoiser, denoise_plane
    from ..engine.denoise.check import consistency_check, data_noise
    from ..engine.methods import MethodSettings, reconstruct_plane

    method = MethodSettings("wiener", "wiener", settings)
    try:
        den = Denoiser.load(model)
        second = _load_step2(step2, job, params, method, True) if step2 else None
        plane = job.plane_frames()
        dn = denoise_plane(plane, den, job.optics, params, job.background)
        image = reconstruct_plane(dn, job.optics, params, job.make_otf(), job.background, method).image
        gain, var0 = data_noise(plane, job.optics, den.meta.gain, job.background)
        rep = consistency_check(plane, dn, job.optics, params, gain, var0, job.background)
        out2 = _step2_on(image, plane, second, job, params, gain) if second else None
    except SimInputError as exc:
        return Failure(str(exc))
    return ApplyOutput(dn.reshape(-1, *dn.shape[-2:]), image, rep.flags, rep.summary(), out2)


def _load_step2(path: str, job: Job, params: PatternParameters, method: Any, step1: bool) -> tuple[Any, list[str]]:
    from ..engine.denoise.step2 import check_step2, load_step2

    den = load_step2(path)
    return den, check_step2(den.meta, job.optics, params, method, step1)


def _step2_on(image: np.ndarray, plane: np.ndarray, loaded: tuple[Any, list[str]], job: Job,
              params: PatternParameters, gain: float | None = None) -> Step2Output:
    from ..engine.denoise.step2 import apply_step2
    from ..engine.denoise.step2_check import step2_check

    den, notes = loaded
    out = apply_step2(image, den)
    check = step2_check(out, plane, job.optics, params, job.make_otf(), job.background, gain=gain)
    return Step2Output(image, out, check.report.flags, check.summary(), tuple(notes))


def run_step2(job: Job, params: PatternParameters, model: str, settings: FilterSettings) -> Step2Output | Failure:
    """Reconstruct the current plane with the dock's Wiener settings, apply step 2 and re-image it."""
    from ..engine.methods import MethodSettings, reconstruct_plane

    method = MethodSettings("wiener", "wiener", settings)
    try:
        loaded = _load_step2(model, job, params, method, False)
        plane = job.plane_frames()
        image = reconstruct_plane(plane, job.optics, params, job.make_otf(), job.background, method).image
        return _step2_on(image, plane, loaded, job, params)
    except SimInputError as exc:
        return Failure(str(exc))
