"""Command-line side of the trained raw-frame denoiser.

``napari-sim-ml train-denoiser -o MODEL.pt (--simulate N --params PARAMS.json --photons P [P2]
| --from-high STACK... --thin S) ...`` and the ``--denoiser MODEL.pt`` option of ``reconstruct``
and ``batch`` (the frames are denoised, all frames of a plane together, before the Wiener filter
or the PINN). ``train-denoiser --step 2`` trains the optional step 2 (a denoiser of the
reconstruction, on simulation) and ``--step2 M2.pt`` applies it after the reconstruction, with
or without step 1; every use prints :data:`~napari_sim_ml.engine.denoise.step2.WARNING` once on
stderr. The engine work is in :mod:`napari_sim_ml.engine.denoise`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .cli_options import (
    add_apply_flags,
    add_layout,
    add_optics,
    background_of,
    estimate_with_warnings,
    resolve_layout,
    resolve_optics,
    resolve_otf,
)
from .engine.errors import SimInputError
from .engine.parameters import Optics, PatternParameters, load_parameters_json, optics_from_dict


def add_train_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``train-denoiser`` sub-command to ``sub``."""
    import inspect

    from .engine.denoise.data import STRUCTURES, simulated_set
    from .engine.denoise.train import CPU_DEFAULT, GPU_DEFAULT, TrainSettings

    sim = {k: v.default for k, v in inspect.signature(simulated_set).parameters.items()}
    train = TrainSettings()

    t = sub.add_parser("train-denoiser", help="train a raw-frame denoiser from simulation or bright stacks")
    t.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--simulate", type=int, metavar="N", help="train on N simulated stacks with --params")
    src.add_argument("--from-high", nargs="+", metavar="STACK", help="high-SNR raw stacks to thin")
    t.add_argument("--params", help="parameters JSON (pattern and optics); --from-high: estimated when omitted")
    t.add_argument("--photons", type=float, nargs="+", default=list(sim["photons"]), metavar="P",
                   help="simulation: peak photons, one value or a range LOW HIGH "
                        f"(default {' '.join(f'{p:g}' for p in sim['photons'])})")
    t.add_argument("--structures", default=",".join(sim["structures"]),
                   help=f"simulation: comma-separated structures from {', '.join(STRUCTURES)}")
    t.add_argument("--size", type=int, help="simulation: field size in camera px (default: 2 × patch)")
    t.add_argument("--read-noise", type=float,
                   help=f"camera read noise σ (counts) of the noisy inputs; simulation default {sim['read_noise']:g}, "
                        "--from-high "
                        "default: the high stacks' fitted var0 (give the low-light camera's if it differs)")
    t.add_argument("--gain", type=float, help="camera gain (counts per photon); --from-high: fitted when omitted")
    t.add_argument("--thin", type=float, default=20.0, help="--from-high: thinning factor S (low = high / S)")
    add_optics(t)
    add_layout(t)
    t.add_argument("--epochs", type=int, default=train.epochs)
    t.add_argument("--steps-per-epoch", type=int, default=train.steps_per_epoch)
    t.add_argument("--batch", type=int, default=train.batch)
    t.add_argument("--patch", type=int, default=train.patch, help="training patch, camera px (multiple of 16)")
    t.add_argument("--width", type=int, help=f"network width (default: {CPU_DEFAULT['width']} on CPU, "
                                             f"{GPU_DEFAULT['width']} on a GPU)")
    t.add_argument("--depth", type=int, help=f"network levels (default: {CPU_DEFAULT['depth']} on CPU, "
                                             f"{GPU_DEFAULT['depth']} on a GPU)")
    t.add_argument("--loss", default=train.loss, choices=("recon", "mse", "mae", "anscombe"))
    t.add_argument("--augment", action="store_true",
                   help="augment by 90° rotations and flips (the model then also accepts rotated patterns)")
    t.add_argument("--lr", type=float, default=train.lr)
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    t.add_argument("--threads", type=int, help="CPU threads (default: all cores, 1 on a loaded machine)")
    t.add_argument("--time-limit", type=float, help="stop after this many seconds (checkpoint kept)")
    t.add_argument("--seed", type=int, default=train.seed)
    t.add_argument("--resume", action="store_true", help="continue the training stored in -o")
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--step", type=int, default=1, choices=(1, 2),
                   help="1: the raw-frame denoiser (default); 2: a denoiser of the reconstruction, trained on "
                        "simulation (--simulate; --patch then counts 2×-grid px); it can distort true structures")
    t.add_argument("--step1", metavar="M1.pt", help="--step 2: train on reconstructions of frames denoised by "
                                                    "this step-1 model (for use after --denoiser M1.pt)")
    t.add_argument("--filter", default="wiener", choices=("wiener", "hifi"),
                   help="--step 2: the classical filter of the reconstructions it is trained on")
    t.add_argument("--wiener", type=float, help="--step 2: their Wiener w (default: chosen from the noise, as "
                                                "reconstruct does without --wiener)")
    return t


def _optics(args: argparse.Namespace, base: dict[str, Any], raw: Any = None) -> Optics:
    if raw is not None:
        return resolve_optics(raw, args, base)
    given = optics_from_dict(base)
    vals: dict[str, Any] = {k: getattr(args, k) or (getattr(given, k) if given else None)
            for k in ("na", "wavelength_nm", "pixel_size_um")}
    missing = [k for k, v in vals.items() if v is None]
    if missing:
        raise SimInputError(f"the optics lack the {missing[0].replace('_', ' ')}; give it in --params or as a flag")
    return Optics(**vals)


def _training_set(args: argparse.Namespace):
    from .engine.denoise.data import simulated_set, thinned_set
    from .engine.io import arrange_frames, read_raw
    from .engine.pinn.noise import NoiseModel

    patch = args.patch
    base: dict[str, Any] = {}
    params: PatternParameters | None = None
    if args.params:
        params, base = load_parameters_json(args.params)
    if args.simulate is not None:
        if params is None:
            raise SimInputError("--simulate needs --params (the pattern to simulate)")
        sim_optics = _optics(args, base)
        structures = tuple(s.strip() for s in args.structures.split(",") if s.strip())
        if len(args.photons) > 2:
            raise SimInputError("--photons takes one value or a range LOW HIGH")
        lo, hi = args.photons[0], args.photons[-1]
        ts = simulated_set(sim_optics, params, args.simulate, args.size or 2 * patch, (lo, hi), structures,
                           read_noise=1.0 if args.read_noise is None else args.read_noise, gain=args.gain or 1.0,
                           otf=resolve_otf(args, sim_optics), seed=args.seed)
        return ts, sim_optics, params
    stacks: list[np.ndarray] = []
    names: list[str] = []
    optics: Optics | None = None
    background, first_plane = 0.0, None
    for path in args.from_high:
        raw = read_raw(path)
        layout = resolve_layout(raw, args)
        planes = arrange_frames(raw.frames, layout)
        optics = optics or _optics(args, base, raw)
        background = background_of(args, raw)
        for plane in planes.reshape(-1, *planes.shape[2:]):
            first_plane = plane if first_plane is None else first_plane
            stacks.append(plane.reshape(-1, *plane.shape[-2:]))
            names.append(Path(path).name)
    assert optics is not None and first_plane is not None
    otf = resolve_otf(args, optics)
    if params is None:
        params = estimate_with_warnings(first_plane, optics, otf, args, background).params
    noise = None
    if args.gain:
        from .engine.pinn.noise import estimate_noise

        noise = estimate_noise(stacks[0] - background, optics.pixel_size_um, otf.support_cycles_per_um,
                               gain=args.gain)
    ts, noise = thinned_set(stacks, args.thin, optics.pixel_size_um, otf.support_cycles_per_um, background,
                            noise, names, None if args.read_noise is None else args.read_noise**2)
    assert isinstance(noise, NoiseModel)
    print(f"noise model of the high-light stacks: gain {noise.gain:.3g} counts/photon, var0 {noise.var0:.3g} "
          f"counts²{'' if noise.reliable else ' (unreliable fit)'}")
    return ts, optics, params


def _run_training(gen: Any, epochs: int, out: Path) -> Any:
    """Run a training generator (step 1 or 2) to its result, printing each epoch's losses.

    Ctrl-C closes the generator, which keeps the checkpoint of the last epoch.
    """
    from .engine.steps import run_to_end


    def report(p: Any) -> None:
        if p.val_loss is not None:
            print(f"epoch {p.epoch}/{epochs}: loss {p.loss:.4f}, validation {p.val_loss:.4f}, {p.seconds:.0f} s",
                  flush=True)

    try:
        return run_to_end(gen, report)
    except KeyboardInterrupt:
        gen.close()
        print(f"interrupted; the checkpoint {out} holds the last epoch (continue with --resume)")
        raise


def cmd_train_denoiser(args: argparse.Namespace) -> int:
    """Train a raw-frame denoiser (``train-denoiser``)."""
    from .engine.denoise.train import TrainSettings, train_steps

    out = Path(args.output)
    if out.exists() and not (args.overwrite or args.resume):
        raise SimInputError(f"{out} exists; use --overwrite to replace it or --resume to continue it")
    if args.resume and not out.exists():
        raise SimInputError(f"--resume: {out} does not exist")
    settings = TrainSettings(epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch=args.batch,
                             patch=args.patch, lr=args.lr, width=args.width, depth=args.depth, device=args.device,
                             seed=args.seed, threads=args.threads, time_limit_s=args.time_limit, loss=args.loss,
                             augment=args.augment)
    if getattr(args, "step", 1) == 2:
        return _train_step2(args, out, settings)
    if getattr(args, "step1", None) or getattr(args, "wiener", None) is not None:
        raise SimInputError("--step1 and --wiener belong to --step 2 (training step 2)")
    t0 = time.perf_counter()
    ts, optics, params = _training_set(args)
    print(f"training data: {ts.clean.shape[0]} stacks of {ts.n_frames} frames, {ts.clean.shape[-2]}×"
          f"{ts.clean.shape[-1]} px ({ts.description['source']}) in {time.perf_counter() - t0:.1f} s")
    res = _run_training(train_steps(ts, optics, params, settings, checkpoint=out,
                                    resume=out if args.resume else None), settings.epochs, out)
    print(f"validation loss {res.val_losses[0]:.4f} (untrained: the noisy input) → {res.val_losses[-1]:.4f}")
    print(f"trained {res.steps} steps on {res.device} in {res.seconds:.0f} s "
          f"({res.meta.training['parameters']} parameters); wrote {out}")
    return 0


def _train_step2(args: argparse.Namespace, out: Path, settings: Any) -> int:
    """``train-denoiser --step 2``: simulate (reconstruction, passband truth) pairs and train step 2."""
    from .engine.denoise.apply import Denoiser
    from .engine.denoise.step2 import WARNING, step2_set
    from .engine.denoise.step2_train import step2_steps
    from .engine.methods import MethodSettings

    if args.simulate is None:
        raise SimInputError("--step 2 trains on simulation only: give --simulate N --params PARAMS.json "
                            "(--from-high is for step 1)")
    if args.params is None:
        raise SimInputError("--simulate needs --params (the pattern to simulate)")
    if settings.loss not in ("recon", "mse", "mae"):  # recon: the squared error on the reconstruction, = mse here
        raise SimInputError("--step 2 takes --loss mse or mae")
    if len(args.photons) > 2:
        raise SimInputError("--photons takes one value or a range LOW HIGH")
    params, base = load_parameters_json(args.params)
    optics = _optics(args, base)
    method = MethodSettings.from_flags(form=args.filter, wiener=args.wiener)
    step1 = Denoiser.load(args.step1, args.device) if args.step1 else None
    print(WARNING, file=sys.stderr, flush=True)
    structures = tuple(s.strip() for s in args.structures.split(",") if s.strip())
    t0 = time.perf_counter()
    ts = step2_set(optics, params, args.simulate, args.size or max(32, args.patch), (args.photons[0], args.photons[-1]),
                   structures, method=method, step1=step1, step1_name=Path(args.step1).name if args.step1 else None,
                   otf=resolve_otf(args, optics), read_noise=1.0 if args.read_noise is None else args.read_noise,
                   seed=args.seed)
    print(f"step-2 training data: {len(ts.inputs)} reconstructions ({ts.description['input']}) of "
          f"{ts.inputs.shape[-2]}×{ts.inputs.shape[-1]} px (2× grid) with their passband truth in "
          f"{time.perf_counter() - t0:.1f} s")
    res = _run_training(step2_steps(ts, optics, params, settings, method, checkpoint=out,
                                    resume=out if args.resume else None), settings.epochs, out)
    print(f"validation loss {res.val_losses[0]:.4f} (the plain reconstruction) → {res.val_losses[-1]:.4f}, in "
          "units of the reconstruction's own error against the passband truth")
    print(f"trained step 2: {res.steps} steps on {res.device} in {res.seconds:.0f} s "
          f"({res.meta.training['parameters']} parameters); wrote {out}")
    return 0


def step2_prepare(path: str, optics: Optics, params: PatternParameters | list[PatternParameters], method: Any,
                  step1: bool, device: str = "auto") -> Any:
    """Load a step-2 model, check it against the data and method; print the warning (and notes) once on stderr."""
    from .engine.denoise.step2 import WARNING, check_step2, load_step2

    den = load_step2(path, device)
    notes: list[str] = []
    for p in [params] if isinstance(params, PatternParameters) else params:
        notes = check_step2(den.meta, optics, p, method, step1)
    print(WARNING, file=sys.stderr, flush=True)
    for note in notes:
        print(note, file=sys.stderr, flush=True)
    return den


def step2_images(images: list[np.ndarray], den: Any, measured: np.ndarray, optics: Optics,
                 params: PatternParameters, otf: Any, background: float) -> tuple[list[np.ndarray], str]:
    """Step 2 on every reconstructed plane; the re-imaging check of the first against its measured frames."""
    from .engine.denoise.step2 import apply_step2
    from .engine.denoise.step2_check import step2_check

    out = [apply_step2(im, den) for im in images]
    return out, step2_check(out[0], measured[0], optics, params, otf, background).summary()


def step2_planes(planes: Iterator[np.ndarray], args: argparse.Namespace, optics: Optics,
                 params: PatternParameters | tuple[PatternParameters, ...], method: Any) -> Iterator[np.ndarray]:
    """Batch: without ``--step2`` the planes as they are; else check the model now, apply it plane by plane."""
    from .engine.denoise.step2 import apply_step2, check_step2, load_step2

    if not getattr(args, "step2", None):
        return planes
    den = load_step2(args.step2, args.denoiser_device)
    for p in [params] if isinstance(params, PatternParameters) else params:
        check_step2(den.meta, optics, p, method, bool(getattr(args, "denoiser", None)))
    return (apply_step2(plane, den, threads=1) for plane in planes)


def step2_announce(args: argparse.Namespace) -> None:
    """Batch with ``--step2``: refuse a missing or step-1 file before any input is read; print the warning once."""
    from .engine.denoise.checkpoint import load_checkpoint
    from .engine.denoise.step2 import WARNING

    if getattr(args, "step2", None):
        if getattr(args, "method", "wiener") != "wiener":
            raise SimInputError("--step2 follows a classical reconstruction; use --method wiener")
        load_checkpoint(args.step2, kind="step2")
        print(WARNING, file=sys.stderr, flush=True)


def denoiser_record(args: argparse.Namespace) -> dict[str, Any] | None:
    """Return the batch output's ``denoiser`` metadata: the step-1 model and the step-2 model, or None."""
    out: dict[str, Any] = {"model": str(args.denoiser)} if getattr(args, "denoiser", None) else {}
    if getattr(args, "step2", None):
        out["step2"] = {"model": str(args.step2), "warning": "step 2 can distort true structures"}
    return out or None


def denoise_planes(flat: np.ndarray, path: str, optics: Optics, params: PatternParameters, background: float,
                   device: str = "auto") -> tuple[np.ndarray, str]:
    """Denoise planes (N, A, P, Y, X) after the compatibility check; also a consistency summary."""
    from .engine.denoise.apply import Denoiser, denoise_plane
    from .engine.denoise.check import consistency_check, data_noise

    den = Denoiser.load(path, device)
    out = np.stack([denoise_plane(p, den, optics, params, background) for p in flat])
    gain, var0 = data_noise(flat[0], optics, den.meta.gain, background)
    rep = consistency_check(flat[0], out[0], optics, params, gain, var0, background)
    return out, rep.summary()


def _denoise_block(block: np.ndarray, den: Any, background: float) -> np.ndarray:
    from .engine.denoise.apply import denoise_frames

    t, z, a, p, ny, nx = block.shape
    out = denoise_frames(np.asarray(block, dtype=np.float32).reshape(t * z, a * p, ny, nx), den, background,
                         threads=1)
    return out.reshape(block.shape)


def denoise_lazy(stack: Any, path: str, optics: Optics, params: PatternParameters | list[PatternParameters],
                 background: float, device: str = "auto") -> Any:
    """(T, Z, A, P, Y, X) dask stack → the same, denoised plane by plane in dask tasks."""
    from .engine.denoise.apply import Denoiser
    from .engine.denoise.checkpoint import check_compatible

    den = Denoiser.load(path, device)
    for p in [params] if isinstance(params, PatternParameters) else params:
        check_compatible(den.meta, optics, p)
    stack = stack.rechunk((1, 1, *stack.shape[2:]))
    return stack.map_blocks(_denoise_block, den, background, dtype=np.float32)


__all__ = ["add_train_parser", "add_apply_flags", "cmd_train_denoiser", "denoise_planes", "denoise_lazy",
           "step2_prepare", "step2_images", "step2_planes", "step2_announce", "denoiser_record"]
