"""Batch reconstruction: ``napari-sim-ml batch INPUTS... -o OUTDIR``.

Every input (TIFF, OME-TIFF, MRC/DV; a folder stands for the raw files in it) is opened lazily, its
frames arranged lazily into (T, Z, A, P, Y, X) planes, the pattern estimated once (on one time point,
or on the mean of all time points; ``--per-time-point`` re-estimates every time point for drifting
patterns) and every plane reconstructed in a dask task: local threads (default), local processes, or
a dask.distributed scheduler address. Planes are computed a few at a time, in order, and written one
by one into ``OUTDIR/<input name>_sim.ome.tif`` (or ``.zarr``) under a temporary name that is renamed
when the file is complete. So a batch that is stopped and started again skips the finished outputs
and redoes the partial ones. An input that cannot be read or reconstructed is reported by name and
skipped; the exit status is 0 when every input succeeded, 1 when some failed and 2 for a usage error.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cli_options import (
    add_estimation,
    add_layout,
    add_method_flags,
    add_optics,
    check_flag_values,
    check_method_flags,
    k_from,
    method_settings,
    request_from_args,
    resolve_layout,
    resolve_optics,
)
from .engine.errors import SimInputError
from .engine.metadata import OME_TIFF_SUFFIXES, RAW_SUFFIXES, ZARR_SUFFIXES
from .engine.outputs import OutputExistsError
from .engine.parameters import PatternParameters, check_pattern_optics
from .executor import SCHEDULER_ADDRESS, Executor, Progress, iter_planes

OUTPUT_SUFFIX = {"ome-tiff": "_sim.ome.tif", "ome-zarr": "_sim.ome.zarr", "zarr": "_sim.zarr"}  # zarr: OME-Zarr too
__all__ = ["add_batch_parser", "build_parser", "run_batch", "output_name", "expand_inputs", "process_file",
           "Executor", "Progress", "iter_planes", "RAW_SUFFIXES", "OUTPUT_SUFFIX"]


# ---------------------------------------------------------------- parser
def _add_batch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="raw stacks, folders of raw stacks, folders of single-frame files (one stack each), "
                        "quoted glob patterns ('cell1_*.tif', one stack each) or OME-Zarr stores")
    p.add_argument("-o", "--output-dir", required=True, help="folder for the outputs (created if needed)")
    p.add_argument("--scheduler", default="threads",
                   help="'threads' (default), 'processes', or a dask.distributed scheduler address "
                        "(tcp://host:8786); cluster workers must see the same files")
    p.add_argument("--workers", type=int, help="local threads/processes (default: all cores)")
    p.add_argument("--method", default="wiener", choices=("wiener", "pinn"))
    p.add_argument("--format", default="ome-tiff", choices=tuple(OUTPUT_SUFFIX),
                   help="output format: OME-TIFF (default) or OME-Zarr (NGFF; 'zarr' is the same, named _sim.zarr)")
    p.add_argument("--ngff-version", default="0.5", choices=("0.4", "0.5"),
                   help="OME-Zarr version: 0.5 (zarr v3, default) or 0.4 (zarr v2, for older viewers)")
    add_optics(p)
    add_layout(p)
    p.add_argument("--channel", type=int, help="channel to reconstruct in files with several channels")
    p.add_argument("--params", help="parameters JSON used for every plane of every input (skips estimation)")
    add_estimation(p)
    p.add_argument("--estimate-on", default="0",
                   help="time point to estimate the pattern on (index, default 0) or 'mean' (average of "
                        "all time points); the middle z plane is used")
    p.add_argument("--per-time-point", action="store_true",
                   help="re-estimate the pattern on every time point (a drifting pattern)")
    add_method_flags(p)
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose output exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_batch_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` sub-command to ``subparsers``; its ``func`` is :func:`run_batch`."""
    p = subparsers.add_parser("batch", help="reconstruct many files / time points through dask",
                              description=__doc__.splitlines()[0])
    _add_batch_arguments(p)
    p.set_defaults(func=run_batch)
    return p


def build_parser() -> argparse.ArgumentParser:
    """Return the stand-alone parser (``python -m napari_sim_ml.batch``)."""
    parser = argparse.ArgumentParser(prog="napari-sim-ml batch", description=__doc__.splitlines()[0])
    _add_batch_arguments(parser)
    parser.set_defaults(func=run_batch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m napari_sim_ml.batch ...``)."""
    return run_batch(build_parser().parse_args(argv))


# ---------------------------------------------------------------- helpers
def output_name(path: Path, fmt: str) -> str:
    """``cell_01.ome.tif`` → ``cell_01_sim.ome.tif`` (or ``cell_01_sim.zarr``)."""
    from .engine.sequence import has_glob

    name = path.name
    if has_glob(str(path)) and not path.exists():  # a pattern: its fixed prefix, else its folder's name
        name = path.name.split("*")[0].split("?")[0].split("[")[0].rstrip("_-. ") or path.parent.name
    for suffix in ZARR_SUFFIXES + OME_TIFF_SUFFIXES + RAW_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name + OUTPUT_SUFFIX[fmt]


def _is_batch_output(path: Path) -> bool:
    """Tell whether ``path`` is a file this command wrote (name and recorded kind), e.g. when -o is the input folder."""
    from .engine.outputs import read_output_metadata

    if not any(path.name.endswith(s) for s in OUTPUT_SUFFIX.values()):
        return False
    meta = read_output_metadata(path)
    return meta is not None and meta.get("kind") == "reconstruction"


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Return the inputs: files as given; a folder of stacks stands for its raw files.

    Sorted, not recursive, without the outputs of an earlier batch written into it; a folder of
    single-frame files, a glob pattern and an OME-Zarr store are one input each.
    """
    from .engine.sequence import is_frame_folder, is_zarr_store

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and (is_zarr_store(path) or is_frame_folder(path)):
            out.append(path)
        elif path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in RAW_SUFFIXES
                          and not p.name.startswith(".") and not _is_batch_output(p))
        else:
            out.append(path)
    return out


# ---------------------------------------------------------------- writers
def write_ome_tiff(path: Path, planes: Iterator[np.ndarray], shape: tuple[int, ...], pixel_size_um: float,
                   metadata: dict[str, Any], progress: Progress) -> None:
    """Write (T, Z, Y, X) float32 planes one by one as an OME-TIFF."""
    from .engine.writers import save_ome_tiff

    save_ome_tiff(path, planes, shape, pixel_size_um, metadata, on_plane=progress.update)


def write_zarr(path: Path, planes: Iterator[np.ndarray], shape: tuple[int, int, int, int], pixel_size_um: float,
               metadata: dict[str, Any], progress: Progress, version: str = "0.5") -> None:
    """Write (T, Z, Y, X) float32 planes one by one as an OME-Zarr image.

    NGFF multiscales, axes t/z as present, y, x in micrometer, one plane per chunk; see
    engine.omezarr.
    """
    from .engine.omezarr import write_omezarr

    write_omezarr(path, planes, shape, pixel_size_um, metadata, progress, version=version)


# ---------------------------------------------------------------- one input
def _on_executor(executor: Executor) -> Any:
    """Return a pipeline ``compute(fn, calls)`` that runs the calls as dask tasks on ``executor``."""
    def compute(fn: Any, calls: list[tuple[Any, ...]]) -> list[Any]:
        import dask

        return list(executor.compute(dask.delayed(list)([dask.delayed(fn)(*c) for c in calls])))

    return compute


def process_file(path: Path, final: Path, args: argparse.Namespace, executor: Executor,
                 given: PatternParameters | None, given_base: dict[str, Any],
                 record: dict[str, Any] | None = None, known: PatternParameters | None = None) -> str:
    """Reconstruct one input into ``final`` (written under a temporary name); return a summary line.

    ``record``: the settings recorded in the output (compared on a rerun); ``known``: parameters
    whose k is kept while phases and modulation are refitted (``--k-from``).
    """
    import time

    from .denoise_cli import denoiser_record, step2_planes
    from .engine.lazy import close_files, open_lazy
    from .engine.outputs import OutputSet
    from .engine.pipeline import estimate, plane_job, reconstruction_metadata
    from .engine.sequence import select_frames

    t_start = time.perf_counter()
    try:
        raw, source = open_lazy(path, args.channel)
    except SimInputError:
        if not args.mosaic:
            raise
        from .engine.io import read_raw

        raw = read_raw(path, require_frames=False)  # a single 2-D mosaic image: one plane, read whole
    try:
        if args.frames or args.mosaic:
            import dask.array as da

            from .engine.mosaic import apply_mosaic

            raw = apply_mosaic(select_frames(raw, args.frames), args.mosaic)
            source = raw.frames if hasattr(raw.frames, "dask") else da.from_array(raw.frames)
        layout = resolve_layout(raw, args)
        optics = resolve_optics(raw, args, given_base)
        if given is not None:
            check_pattern_optics(given, optics)
        request = request_from_args(args, raw, layout, optics, given, method_settings(args), keep_k=known,
                                    frames=source)
        stack = request.planes()  # lazy (T, Z, A, P, Y, X), one plane per chunk
        otf = request.otf.make(optics)
        n_t, n_z, n_a, n_p, ny, nx = stack.shape
        progress_on = not args.no_progress
        bar = Progress(f"{path.name} estimating", n_t, progress_on and args.per_time_point and given is None,
                       "time points")
        est = estimate(request, otf, compute=_on_executor(executor), chunk=max(1, 2 * executor.workers),
                       progress=lambda done, total: bar.update(done - bar.done), name_errors=True)
        bar.close()
        params = est.params
        estimated_on = est.estimated_on
        if known is not None and given is None:
            estimated_on = f"{estimated_on} (phases; k from {args.k_from})"
        measured = stack if getattr(args, "denoiser", None) else None  # the raw frames, when denoised in dask tasks
        if measured is not None:
            from .denoise_cli import denoise_lazy

            stack = denoise_lazy(stack, args.denoiser, optics, list(params) if isinstance(params, tuple) else params,
                                 request.background, args.denoiser_device)
        job = plane_job(request, params, otf)
        out_px = optics.pixel_size_um / 2
        meta = reconstruction_metadata(request, params, name=final.name, estimated_on=estimated_on,
                                       channel=args.channel, request=record,
                                       denoiser=denoiser_record(args)).to_dict()
        shape = (n_t, n_z, 2 * ny, 2 * nx)
        batch_t = max(1, math.ceil(2 * executor.workers / n_z))
        bar = Progress(path.name, n_t * n_z, progress_on)
        with OutputSet(args.overwrite) as outs:  # unique temporary name, fsync, no-clobber rename
            planes = step2_planes(iter_planes(stack, job, executor, batch_t, 2, measured), args, optics, params,
                                  request.method)
            if args.format in ("zarr", "ome-zarr"):
                write_zarr(outs.stage(final), planes, shape, out_px, meta, bar, version=args.ngff_version)
            else:
                write_ome_tiff(outs.stage(final), planes, shape, out_px, meta, bar)
            bar.close()
            outs.commit()
    finally:
        close_files(raw.path.resolve())
    seconds = time.perf_counter() - t_start
    return (f"{path.name}: {n_t * n_z} plane(s) ({n_t} time point(s) × {n_z} z) in {seconds:.2f} s "
            f"({n_t * n_z / max(seconds, 1e-9):.2f} planes/s), pattern from {estimated_on} → {final}")


# ---------------------------------------------------------------- command
def run_batch(args: argparse.Namespace) -> int:
    """Run the batch; 0 when every input succeeded, 1 when some failed, 2 for a usage error.

    A SIGTERM stops it like Ctrl-C: temporary files removed, worker processes ended.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args)
    except SimInputError as exc:
        print(f"napari-sim-ml: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _skip_reason(final: Path, request: dict[str, Any]) -> str | None:
    """None when ``final`` holds a complete output made with ``request``; else why not."""
    from .engine.outputs import read_output_metadata, record_differences

    meta = read_output_metadata(final)
    if not meta:
        return f"{final} exists but is not a complete output of this command; use --overwrite to redo it"
    stored = meta.get("request")
    if stored is None:
        return None  # written before settings were recorded: kept as finished
    diff = record_differences(stored, request)
    if diff:
        return (f"{final} was made with other settings ({', '.join(diff)}); use --overwrite to redo it "
                "or another -o folder")
    return None


def _run(args: argparse.Namespace) -> int:
    from .denoise_cli import step2_announce
    from .engine.outputs import _same as same_file
    from .engine.outputs import check_folder_writable, settings_record
    from .engine.parameters import load_parameters_json

    check_method_flags(args)
    check_flag_values(args)
    if args.scheduler not in ("threads", "processes") and not SCHEDULER_ADDRESS.match(args.scheduler):
        raise SimInputError(f"--scheduler takes 'threads', 'processes' or a scheduler address such as "
                            f"tcp://host:8786, not '{args.scheduler}'")
    if args.estimate_on != "mean":
        try:
            int(args.estimate_on)
        except ValueError:
            raise SimInputError(f"--estimate-on takes a time point index or 'mean', not '{args.estimate_on}'") \
                from None
    if args.workers is not None and args.workers < 1:
        raise SimInputError("--workers must be at least 1")
    if args.method == "pinn":
        import importlib.util

        if importlib.util.find_spec("napari_sim_ml.engine.pinn") is None:
            raise SimInputError("the PINN method is not available in this installation; use --method wiener")
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise SimInputError("no raw files found in the given inputs")
    outdir = Path(args.output_dir)
    if outdir.exists() and not outdir.is_dir():
        raise SimInputError(f"{outdir} is a file, not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimInputError(f"cannot make the output folder {outdir}: {exc.strerror or exc}") from None
    check_folder_writable(outdir)
    finals: dict[Path, Path] = {}
    for path in inputs:
        final = outdir / output_name(path, args.format)
        for other in inputs:
            if same_file(final, other):
                raise SimInputError(f"the output {final} would replace the input {other}; choose another -o folder")
        clash = [p for p, f in finals.items() if f == final]
        if clash:
            raise SimInputError(f"{clash[0]} and {path} would both be written to {final}; batch them separately")
        finals[path] = final
    given, base = (load_parameters_json(args.params) if args.params else (None, {}))
    known, known_base = k_from(args)  # with --params: one line; a bad file: one line before any input is read
    step2_announce(args)  # --step2: a missing or step-1 file refused in one line; the warning once per batch

    request = settings_record(vars(args))
    failed: list[str] = []
    todo = []
    skipped = 0
    for path in inputs:
        final = finals[path]
        if args.overwrite or not (final.exists() or final.is_symlink()):
            todo.append(path)
            continue
        reason = _skip_reason(final, request)
        if reason is None:
            skipped += 1
            print(f"{path.name}: skipped, {final} exists (use --overwrite to redo it)")
        else:
            failed.append(path.name)
            print(f"napari-sim-ml: error: {path.name}: {reason}", file=sys.stderr, flush=True)
    done = 0
    if todo:
        with Executor(args.scheduler, args.workers) as executor:
            for n, path in enumerate(todo, 1):
                try:
                    line = process_file(path, finals[path], args, executor, given, base or known_base, request,
                                        known=known)
                    print(f"[{n}/{len(todo)}] {line}", flush=True)
                    done += 1
                except KeyboardInterrupt:
                    raise
                except OutputExistsError as exc:  # another run finished this output first: it is kept
                    skipped += 1
                    print(f"{path.name}: skipped, {exc}", flush=True)
                except SimInputError as exc:
                    failed.append(path.name)
                    print(f"napari-sim-ml: error: {path.name}: {exc}", file=sys.stderr, flush=True)
                except Exception as exc:  # any other failure of one input must not stop the batch
                    if os.environ.get("NAPARI_SIM_ML_DEBUG"):
                        raise
                    failed.append(path.name)
                    print(f"napari-sim-ml: error: {path.name}: {type(exc).__name__}: {exc}",
                          file=sys.stderr, flush=True)
    print(f"batch: {done} reconstructed, {skipped} skipped (done before), {len(failed)} failed"
          + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
