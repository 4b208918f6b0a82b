"""Training loop of the step-2 model (torch, imported lazily by the callers).

:func:`step2_steps` is a generator like the step-1 :func:`.train.train_steps`: it yields a
:class:`.train.TrainProgress` after every step and returns a :class:`.train.TrainResult`; a
checkpoint (kind "step2") is written after every epoch and when cancelled. The settings are step
1's :class:`.train.TrainSettings` (``patch`` in 2×-grid px here).

The loss is the mean squared error against the matched passband truth in units of the input's
own error (so the untrained network, the identity, scores 1 and a loss below 1 means closer to
the truth than the plain reconstruction); ``loss="mae"`` uses the absolute error alike. Step 1's
default ``"recon"`` (the error measured on the reconstruction) is that same squared error here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import SimInputError
from ..methods import MethodSettings
from ..parameters import Optics, PatternParameters
from ..steps import run_to_end
from ..torch_runtime import cpu_threads, select_device
from .checkpoint import load_checkpoint, save_checkpoint
from .data import dihedral
from .step2 import Step2Set, step2_meta
from .train import CPU_DEFAULT, GPU_DEFAULT, TrainProgress, TrainResult, TrainSettings


def sample_pairs(ts: Step2Set, batch: int, patch: int, rng: np.random.Generator,
                 augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Random (input, target) crops (batch, 1, patch, patch), the same dihedral transform on both."""
    n, ny, nx = ts.inputs.shape
    if patch > min(ny, nx):
        raise SimInputError(f"the patch ({patch} px) is larger than the step-2 training images ({ny}×{nx} px)")
    x = np.empty((batch, 1, patch, patch), np.float32)
    y = np.empty_like(x)
    for b in range(batch):
        i = int(rng.integers(n))
        r, c = int(rng.integers(ny - patch + 1)), int(rng.integers(nx - patch + 1))
        k = int(rng.integers(8)) if augment else 0
        x[b, 0] = dihedral(ts.inputs[i, r:r + patch, c:c + patch], k)
        y[b, 0] = dihedral(ts.targets[i, r:r + patch, c:c + patch], k)
    return x, y


def step2_steps(
    ts: Step2Set,
    optics: Optics,
    params: PatternParameters,
    settings: TrainSettings | None = None,
    method: MethodSettings | None = None,
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train (or resume) a step-2 model on ``ts``; yields progress, returns the result.

    method: the reconstruction ``ts`` was made with (recorded; default the CLI's Wiener).
    checkpoint: written after every epoch and on cancel. resume: a step-2 checkpoint to continue
    (``settings.epochs`` is the total).
    """
    import torch

    from .model import DenoiseNet, NetConfig, n_parameters

    settings = settings or TrainSettings()
    method = method or MethodSettings.from_flags()
    after_step1 = str(ts.description.get("input", "")).startswith("step1")
    device = select_device(settings.device)
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(settings.threads))
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    done_epochs, losses, val_losses, opt_state, seconds0, weights = 0, [], [], None, 0.0, None
    if resume is not None:
        meta, weights, opt_state, resumed = load_checkpoint(resume, kind="step2")
        cfg = NetConfig(**meta.net)
        done_epochs = int(resumed.get("epochs_done", 0))
        losses, val_losses = list(resumed.get("losses", [])), list(resumed.get("val_losses", []))
        seconds0 = float(resumed.get("seconds", 0.0))
        rng = np.random.default_rng([settings.seed, done_epochs])
    else:
        base = GPU_DEFAULT if device.type == "cuda" else CPU_DEFAULT
        cfg = NetConfig(1, settings.width or base["width"], settings.depth or base["depth"])
        meta = step2_meta(optics, params, cfg.to_dict(), method, after_step1)
    if settings.patch % (2 ** (cfg.depth - 1)):
        raise SimInputError(f"the patch must be a multiple of {2 ** (cfg.depth - 1)} px for this network")
    net = DenoiseNet(cfg).to(device)
    if weights is not None:
        net.load_state_dict(weights)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    if opt_state:
        opt.load_state_dict(opt_state)
    total = settings.epochs * settings.steps_per_epoch
    schedule = lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / max(total, 1), 1.0)))  # noqa: E731
    vx_np, vy_np = sample_pairs(ts, settings.validation, settings.patch, np.random.default_rng(12345),
                                settings.augment)
    vx, vy = torch.from_numpy(vx_np).to(device), torch.from_numpy(vy_np).to(device)
    if settings.loss not in ("recon", "mse", "mae"):
        raise SimInputError(f"step 2 trains with the loss mse or mae, not '{settings.loss}'")
    mae = settings.loss == "mae"
    # the input's own error on the validation pairs: the unit of the loss (identity = 1)
    unit = float(np.mean(np.abs(vx_np - vy_np))) if mae else float(np.mean((vx_np - vy_np) ** 2))
    unit = max(unit, 1e-12)

    def loss_fn(pred, target):
        err = torch.abs(pred - target) if mae else (pred - target) ** 2
        return torch.mean(err) / unit

    def validate() -> float:
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(vx), vy))
        net.train()
        return val

    def finish(epochs_done: int, secs: float, cancelled: bool):
        training = {**ts.description, "epochs": epochs_done, "steps_per_epoch": settings.steps_per_epoch,
                    "batch": settings.batch, "patch": settings.patch, "seconds": secs, "loss": "mae" if mae else "mse",
                    "loss_unit": "the input reconstruction's own error", "augment": settings.augment,
                    "parameters": n_parameters(net), "final_val_loss": val_losses[-1] if val_losses else None,
                    "cancelled": cancelled}
        out = replace(meta, training=training)
        if checkpoint is not None:
            save_checkpoint(checkpoint, out, {k: v.detach().cpu() for k, v in net.state_dict().items()},
                            opt.state_dict(), {"epochs_done": epochs_done, "losses": losses,
                                               "val_losses": val_losses, "seconds": secs, "device": device.type})
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
                if settings.time_limit_s:
                    elapsed = seconds0 + time.perf_counter() - t0
                    done = max(step, int(total * min(elapsed / settings.time_limit_s, 1.0)))
                for g in opt.param_groups:
                    g["lr"] = settings.lr * schedule(done)
                xb, yb = sample_pairs(ts, settings.batch, settings.patch, rng, settings.augment)
                loss = loss_fn(net(torch.from_numpy(xb).to(device)), torch.from_numpy(yb).to(device))
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
    except GeneratorExit:  # cancelled: keep what was learned so far
        finish(epoch, seconds0 + time.perf_counter() - t0, True)
        raise
    finally:
        torch.set_num_threads(threads_before)
    secs = seconds0 + time.perf_counter() - t0
    meta = finish(epoch, secs, False)
    weights = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return TrainResult(Path(checkpoint) if checkpoint else None, meta, step, secs, losses, val_losses,
                       device=device.type, weights=weights)


def train_step2(ts: Step2Set, optics: Optics, params: PatternParameters, settings: TrainSettings | None = None,
                method: MethodSettings | None = None, checkpoint: str | Path | None = None,
                resume: str | Path | None = None) -> TrainResult:
    """Run :func:`step2_steps` to the end."""
    return run_to_end(step2_steps(ts, optics, params, settings, method, checkpoint, resume))


__all__ = ["sample_pairs", "step2_steps", "train_step2"]
