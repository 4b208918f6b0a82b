"""Training loop of the raw-frame denoiser (torch, imported lazily by the callers).

:func:`train_steps` is a generator: it yields a :class:`TrainProgress` after every step (the
widget's worker turns these into a live loss curve; closing the generator cancels) and returns
a :class:`TrainResult`. A checkpoint is written after every epoch (and when cancelled), so an
interrupted training resumes from its last epoch with ``resume=``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import SimInputError
from ..parameters import Optics, PatternParameters
from ..steps import run_to_end
from ..torch_runtime import cpu_threads, select_device
from .checkpoint import DenoiserMeta, load_checkpoint, save_checkpoint
from .data import TrainingSet, sample_batch

# network size when TrainSettings leaves it open, on a CPU: one convolution at the camera grid (half the
# time per plane of two there), width 32 below it; +1.28 dB over Wiener at 60 photons in 3 minutes against
# +0.62 dB for the former width 24 with two camera-grid convolutions (benchmarks/RESULTS.md, issue 13)
CPU_DEFAULT = {"width": 32, "depth": 3, "full_convs": 1}
GPU_DEFAULT = {"width": 48, "depth": 4}  # and on a GPU
RECON_FLOOR = 0.25  # "recon" loss: a patch's noise unit is that of at least this × the reference signal


@dataclass(frozen=True)
class TrainSettings:
    """epochs × steps_per_epoch steps of ``batch`` patches of ``patch``² camera pixels.

    width/depth: network size (None: the CPU or GPU default); full / full_convs: channels and 3×3
    convolutions per block at the camera grid (None: max(8, width // 2) and the default's count);
    loss: "recon" (the default: the error the Wiener reconstruction makes of the frame error, each
    example in units of its own noise, :mod:`.recon_loss`), "mse", "mae" or "anscombe" (see
    :mod:`.model`); lr: Adam learning rate (cosine
    decay to 5 % over the run); device: "auto" | "cpu" | "cuda"; threads: CPU threads (None: all
    usable cores, 1 if busy); augment: 90° rotations and flips of the patches (then the denoiser also accepts
    rotated/flipped patterns; without, the default, each channel keeps its pattern direction, which
    scored +0.54 dB over Wiener at 60 photons against +0.35 dB with it, in half the steps);
    time_limit_s: stop (and checkpoint) after the first epoch that ends past this many seconds;
    the learning rate then decays over the time budget.
    """

    epochs: int = 20
    steps_per_epoch: int = 25
    batch: int = 8
    patch: int = 64
    lr: float = 4e-3
    width: int | None = None
    depth: int | None = None
    full: int | None = None
    full_convs: int | None = None
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    time_limit_s: float | None = None
    validation: int = 16
    loss: str = "recon"
    augment: bool = False

    def __post_init__(self) -> None:
        if self.loss not in ("mse", "mae", "anscombe", "recon"):
            raise SimInputError(f"unknown loss '{self.loss}'; choose mse, mae, anscombe or recon")
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.batch < 1:
            raise SimInputError("epochs, steps per epoch and batch must be at least 1")
        if self.patch < 16 or self.patch % 16:
            raise SimInputError("the training patch must be a multiple of 16 px, at least 16")


@dataclass(frozen=True)
class TrainProgress:
    """One training step: step / total, epoch, the step's loss (noise σ units)."""

    step: int
    total: int
    epoch: int
    loss: float
    seconds: float
    val_loss: float | None = None  # set on the last step of an epoch


@dataclass(frozen=True)
class TrainResult:
    """A finished training: checkpoint path (None if not saved), its metadata, steps and seconds."""

    path: Path | None
    meta: DenoiserMeta
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    cancelled: bool = False
    device: str = "cpu"
    weights: dict = field(default_factory=dict, repr=False)


def reference_photons(ts: TrainingSet) -> float:
    """Normalisation: the median over examples of the mean clean signal, in photons.

    Fixed per model (not per patch or plane), so that tiles and planes are normalised alike and
    the network sees the absolute photon level (the noise level) of its input. Scaling to the
    mean rather than a high percentile keeps the noise at O(0.1–1) in network units, which trained
    several times faster than a 99.9th-percentile scale (noise ≈ 0.06).
    """
    m = ts.clean.reshape(ts.clean.shape[0], -1).mean(axis=1) / ts.gain
    return float(max(np.median(m), 0.1))


def _to_net(x: np.ndarray, gain: float, ref: float, device):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x / (gain * ref), dtype=np.float32)).to(device)
    return t.contiguous(memory_format=torch.channels_last)


def train_steps(
    ts: TrainingSet,
    optics: Optics,
    params: PatternParameters,
    settings: TrainSettings = TrainSettings(),
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train (or resume) a denoiser on ``ts``; yields progress, returns the result.

    checkpoint: written after every epoch and on cancel. resume: a checkpoint to continue
    (its network, normalisation and optimiser; ``settings.epochs`` is the total).
    """
    import torch

    from .model import (
        DenoiseNet,
        NetConfig,
        anscombe_mse,
        n_parameters,
        net_config,
        scaled_mae,
        scaled_mse,
    )

    if ts.n_frames != params.n_angles * params.n_phases:
        raise SimInputError(f"the training stacks have {ts.n_frames} frames but the pattern has "
                            f"{params.n_angles} × {params.n_phases}")
    device = select_device(settings.device)
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(settings.threads))
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    done_epochs, losses, val_losses, opt_state, seconds0 = 0, [], [], None, 0.0
    if resume is not None:
        meta, weights, opt_state, resumed = load_checkpoint(resume)
        if meta.n_frames != ts.n_frames:
            raise SimInputError("the checkpoint to resume was trained for a different number of frames")
        cfg = net_config(meta.net)
        done_epochs = int(resumed.get("epochs_done", 0))
        losses, val_losses = list(resumed.get("losses", [])), list(resumed.get("val_losses", []))
        seconds0 = float(resumed.get("seconds", 0.0))
        rng = np.random.default_rng([settings.seed, done_epochs])
    else:
        base = GPU_DEFAULT if device.type == "cuda" else CPU_DEFAULT
        cfg = NetConfig(ts.n_frames, settings.width or base["width"], settings.depth or base["depth"],
                        settings.full, settings.full_convs or base.get("full_convs", 2))
        meta = DenoiserMeta(optics, params, ts.gain, ts.var0, reference_photons(ts), cfg.to_dict())
        weights = None
    net = DenoiseNet(cfg).to(device)
    if weights is not None:
        net.load_state_dict(weights)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # faster CPU convolutions
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    if opt_state:
        opt.load_state_dict(opt_state)
    total = settings.epochs * settings.steps_per_epoch
    schedule = lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / max(total, 1), 1.0)))  # noqa: E731
    vrng = np.random.default_rng(12345)
    v_noisy, v_clean = sample_batch(ts, settings.validation, settings.patch, vrng, settings.augment)
    gain, ref = ts.gain, meta.ref_photons
    vx, vy = _to_net(v_noisy, gain, ref, device), _to_net(v_clean, gain, ref, device)
    scale = gain * ref
    rweights, rcache = None, {}  # type: ignore[var-annotated]
    if settings.loss == "recon":
        from .recon_loss import recon_weights

        rweights = recon_weights(optics, params, settings.patch, augmented=settings.augment)

    def loss_fn(pred, target):
        if rweights is not None:
            from .recon_loss import recon_loss

            floor = RECON_FLOOR * scale  # each example in units of its own noise (bright ones do not dominate)
            mean = torch.clamp(torch.mean(target, dim=(1, 2, 3)) * scale, min=floor)
            return recon_loss(pred * scale, target * scale, rweights, gain * mean + max(ts.var0, 0.0), rcache)
        if settings.loss == "anscombe":
            return anscombe_mse(pred * scale, target * scale, gain, ts.var0)
        if settings.loss == "mae":
            return scaled_mae(pred * scale, target * scale, gain, ts.var0, scale)
        return scaled_mse(pred * scale, target * scale, gain, ts.var0, scale)

    def validate() -> float:
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(vx), vy))
        net.train()
        return val

    def state(epochs_done: int, secs: float) -> dict:
        return {"epochs_done": epochs_done, "losses": losses, "val_losses": val_losses, "seconds": secs,
                "device": device.type}

    def finish(epochs_done: int, secs: float, cancelled: bool) -> DenoiserMeta:
        training = {**ts.description, "epochs": epochs_done, "steps_per_epoch": settings.steps_per_epoch,
                    "batch": settings.batch, "patch": settings.patch, "seconds": secs, "loss": settings.loss,
                    "augment": settings.augment,
                    "parameters": n_parameters(net), "final_val_loss": val_losses[-1] if val_losses else None,
                    "cancelled": cancelled}
        out = replace(meta, training=training)
        if checkpoint is not None:
            save_checkpoint(checkpoint, out, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                            opt.state_dict(), state(epochs_done, secs))
        return out

    if not val_losses:
        val_losses.append(validate())
    t0 = time.perf_counter()
    step = done_epochs * settings.steps_per_epoch
    epoch = done_epochs
    try:
        net.train()
        while epoch < settings.epochs:
            for _ in range(settings.steps_per_epoch):
                done = step
                if settings.time_limit_s:  # a time budget: decay over the budget, not the nominal epochs
                    elapsed = seconds0 + time.perf_counter() - t0
                    done = max(step, int(total * min(elapsed / settings.time_limit_s, 1.0)))
                for g in opt.param_groups:
                    g["lr"] = settings.lr * schedule(done)
                noisy, clean = sample_batch(ts, settings.batch, settings.patch, rng, settings.augment)
                x, y = _to_net(noisy, gain, ref, device), _to_net(clean, gain, ref, device)
                loss = loss_fn(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                losses.append(float(loss.detach()))
                last = step % settings.steps_per_epoch == 0
                if last:
                    val_losses.append(validate())
                secs = seconds0 + time.perf_counter() - t0
                yield TrainProgress(step, total, epoch + (1 if last else 0), losses[-1], secs,
                                    val_losses[-1] if last else None)
            epoch += 1
            secs = seconds0 + time.perf_counter() - t0
            if checkpoint is not None and epoch < settings.epochs:
                finish(epoch, secs, False)
            if settings.time_limit_s is not None and secs >= settings.time_limit_s:
                break
    except GeneratorExit:  # cancelled by the caller: keep what was learned so far
        finish(epoch, seconds0 + time.perf_counter() - t0, True)
        raise
    finally:
        torch.set_num_threads(threads_before)
    secs = seconds0 + time.perf_counter() - t0
    meta = finish(epoch, secs, False)
    weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    return TrainResult(Path(checkpoint) if checkpoint else None, meta, step, secs, losses, val_losses,
                       device=device.type, weights=weights)


def train_denoiser(ts: TrainingSet, optics: Optics, params: PatternParameters,
                   settings: TrainSettings = TrainSettings(), checkpoint: str | Path | None = None,
                   resume: str | Path | None = None) -> TrainResult:
    """Run :func:`train_steps` to the end."""
    return run_to_end(train_steps(ts, optics, params, settings, checkpoint, resume))


__all__ = ["TrainSettings", "TrainProgress", "TrainResult", "train_steps", "train_denoiser", "reference_photons"]
