"""Batch reconstruction: ``napari-sim-ml batch INPUTS... -o OUTDIR``.

Every input (TIFF, OME-TIFF, MRC/DV; a folder stands for the raw files in it) is
opened lazily, its frames arranged lazily into (T, Z, A, P, Y, X) planes, the
pattern estimated once (on one time point, or on the mean of all time points;
``--per-time-point`` re-estimates every time point for drifting patterns) and every
plane reconstructed in a dask task: local threads (default), local processes, or a
dask.distributed scheduler address. Planes are computed a few at a time, in order,
and written one by one into ``OUTDIR/<input name>_sim.ome.tif`` (or ``.zarr``)
under a temporary name that is renamed when the file is complete. So a batch that
is stopped and started again skips the finished outputs and redoes the partial
ones. An input that cannot be read or reconstructed is reported by name and
skipped; the exit status is 0 when every input succeeded, 1 when some failed and 2
for a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .engine.errors import SimInputError
from .engine.outputs import OutputExistsError
from .engine.parameters import FilterSettings, PatternParameters, check_pattern_optics

RAW_SUFFIXES = (".tif", ".tiff", ".mrc", ".dv", ".st", ".map")
OUTPUT_SUFFIX = {"ome-tiff": "_sim.ome.tif", "ome-zarr": "_sim.ome.zarr", "zarr": "_sim.zarr"}  # zarr: OME-Zarr too


# ---------------------------------------------------------------- parser
def _add_batch_arguments(p: argparse.ArgumentParser) -> None:
    from .cli import _add_layout, _add_method_flags, _add_optics

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
    _add_optics(p)
    _add_layout(p)
    p.add_argument("--channel", type=int, help="channel to reconstruct in files with several channels")
    p.add_argument("--params", help="parameters JSON used for every plane of every input (skips estimation)")
    p.add_argument("--k-from", metavar="PARAMS.json",
                   help="keep k (and the angles) of this parameters JSON; refit only phases and modulation")
    p.add_argument("--estimate-on", default="0",
                   help="time point to estimate the pattern on (index, default 0) or 'mean' (average of "
                        "all time points); the middle z plane is used")
    p.add_argument("--per-time-point", action="store_true",
                   help="re-estimate the pattern on every time point (a drifting pattern)")
    _add_method_flags(p)
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
    for suffix in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif") + RAW_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name + OUTPUT_SUFFIX[fmt]


def _is_batch_output(path: Path) -> bool:
    """A file this command wrote (name and recorded kind), e.g. when -o is the input folder."""
    from .engine.outputs import read_output_metadata

    if not any(path.name.endswith(s) for s in OUTPUT_SUFFIX.values()):
        return False
    meta = read_output_metadata(path)
    return bool(meta) and meta.get("kind") == "reconstruction"


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files as given; a folder of stacks stands for its raw files (sorted, not recursive), without
    the outputs of an earlier batch written into it; a folder of single-frame files, a glob pattern
    and an OME-Zarr store are one input each.
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


class Progress:
    """A one-line text progress bar on stderr (redrawn at most every 0.2 s, 2 s off a terminal)."""

    def __init__(self, label: str, total: int, enabled: bool = True, unit: str = "planes"):
        self.label, self.total, self.unit, self.enabled = label, max(total, 1), unit, enabled
        self.done = 0
        self.t0 = self._last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (self.done >= self.total or now - self._last >= (0.2 if self.tty else 2.0)):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        fill = int(width * self.done / self.total)
        rate = self.done / max(now - self.t0, 1e-9)
        line = (f"{self.label} [{'#' * fill}{'-' * (width - fill)}] {self.done}/{self.total} "
                f"{self.unit}, {rate:.1f}/s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)


# ---------------------------------------------------------------- executors
class Executor:
    """Runs dask collections: ``submit(obj)`` → a future with ``.result()``.

    Local ('threads' / 'processes'): a persistent pool of ``workers`` threads or
    processes shared by up to two concurrent ``dask.compute`` calls, so the next
    batch starts while the current one finishes. Otherwise a dask.distributed
    Client connected to the given scheduler address.
    """

    def __init__(self, scheduler: str, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.scheduler = scheduler
        self.client = None
        if scheduler in ("threads", "processes"):
            self.workers = max(1, workers or os.cpu_count() or 1)
            if scheduler == "threads":
                self.pool: Any = ThreadPoolExecutor(self.workers, thread_name_prefix="sim-batch")
            else:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_worker_init, initargs=(os.getpid(),))
            self.driver = ThreadPoolExecutor(2, thread_name_prefix="sim-batch-driver")
        else:
            try:
                from distributed import Client
            except ImportError:
                raise SimInputError("--scheduler ADDRESS needs the 'distributed' package") from None
            if not SCHEDULER_ADDRESS.match(scheduler):
                raise SimInputError(f"--scheduler takes 'threads', 'processes' or a scheduler address such as "
                                    f"tcp://host:8786, not '{scheduler}'")
            try:
                self.client = Client(scheduler, timeout="10s", set_as_default=False)
            except Exception as exc:  # distributed raises many types for a bad or absent scheduler
                raise SimInputError(f"cannot connect to the dask scheduler at {scheduler}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            self.workers = max(1, sum(self.client.nthreads().values()))

    def submit(self, obj: Any) -> Any:
        if self.client is not None:
            return self.client.compute(obj)
        return self.driver.submit(obj.compute, scheduler=self.scheduler, pool=self.pool,
                                  num_workers=self.workers)

    def compute(self, obj: Any) -> Any:
        return self.submit(obj).result()

    def close(self, interrupted: bool = False) -> None:
        if self.client is not None:
            self.client.close()
            return
        if interrupted and self.scheduler == "processes":  # stop the workers now, do not wait for their tasks
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.driver.shutdown(wait=not interrupted, cancel_futures=True)
        # interrupted: the workers are terminated; waiting for the pool's bookkeeping (or for a dask
        # driver thread whose cancelled tasks never report back) could hang the Ctrl-C
        self.pool.shutdown(wait=not interrupted, cancel_futures=True)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        self.close(interrupted=exc_type is not None and issubclass(exc_type, BaseException)
                   and not issubclass(exc_type, Exception))


SCHEDULER_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$|^[A-Za-z0-9.\-]+:\d+$")


def _worker_init(parent_pid: int) -> None:
    """In every worker process: Ctrl-C is the parent's to handle, and the worker exits
    as soon as its parent is gone (a kill -9 of the batch leaves no orphans).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _estimate_params(plane: np.ndarray, optics: Any, otf: Any, n_orders: int | None, background: float,
                     where: str, known: PatternParameters | None = None) -> PatternParameters:
    """Estimation (or, with ``known``, phases refitted at its k) for a dask task; errors become a
    plain, picklable SimInputError.
    """
    from .engine.refit import estimate_or_refit

    try:
        return estimate_or_refit(np.asarray(plane), optics, known, otf=otf, n_orders=n_orders,
                                 background=background).params
    except SimInputError as exc:
        raise SimInputError(f"{where}: {exc}") from None


def iter_planes(stack: Any, job: Any, executor: Executor, batch_t: int, window: int = 2) -> Iterator[np.ndarray]:
    """Reconstructed planes (2Y, 2X) in (t, z) order; ``window`` batches of ``batch_t``
    time points are in flight at a time, so memory does not grow with the series.
    """
    from .engine.lazy import reconstruct_lazy

    starts = iter(range(0, stack.shape[0], batch_t))
    pending: deque = deque()

    def submit_next() -> None:
        t0 = next(starts, None)
        if t0 is not None:
            pending.append(executor.submit(reconstruct_lazy(stack[t0:t0 + batch_t], job, t0)))

    for _ in range(window):
        submit_next()
    while pending:
        block = pending.popleft().result()
        submit_next()
        for per_t in block:
            yield from per_t


# ---------------------------------------------------------------- writers
def write_ome_tiff(path: Path, planes: Iterator[np.ndarray], shape: tuple[int, ...], pixel_size_um: float,
                   metadata: dict[str, Any], progress: Progress) -> None:
    """Write (T, Z, Y, X) float32 planes one by one as an OME-TIFF."""
    import tifffile

    from .engine.io import METADATA_KEY, _json_default

    def counted() -> Iterator[np.ndarray]:
        for plane in planes:
            yield plane
            progress.update()

    optics = metadata.get("optics", {})
    ome: dict[str, Any] = {
        "axes": "TZYX", "Name": metadata.get("name", path.name),
        "PhysicalSizeX": pixel_size_um, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_size_um, "PhysicalSizeYUnit": "µm",
        "Description": json.dumps({METADATA_KEY: metadata}, default=_json_default),
    }
    if metadata.get("z_step_um"):
        ome.update(PhysicalSizeZ=float(metadata["z_step_um"]), PhysicalSizeZUnit="µm")
    if optics.get("wavelength_nm"):
        ome["Channel"] = {"Name": "SIM", "EmissionWavelength": optics["wavelength_nm"],
                          "EmissionWavelengthUnit": "nm"}
    big = math.prod(shape) * 4 > 2**31
    with tifffile.TiffWriter(path, bigtiff=big, ome=True) as tw:
        tw.write(counted(), shape=shape, dtype=np.float32, photometric="minisblack", metadata=ome,
                 resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")


def write_zarr(path: Path, planes: Iterator[np.ndarray], shape: tuple[int, ...], pixel_size_um: float,
               metadata: dict[str, Any], progress: Progress, version: str = "0.5") -> None:
    """Write (T, Z, Y, X) float32 planes one by one as an OME-Zarr image (NGFF multiscales, axes t/z
    as present, y, x in micrometer, one plane per chunk; see engine.omezarr).
    """
    from .engine.omezarr import write_omezarr

    write_omezarr(path, planes, shape, pixel_size_um, metadata, progress, version=version)


# ---------------------------------------------------------------- one input
def process_file(path: Path, final: Path, args: argparse.Namespace, executor: Executor,
                 given: PatternParameters | None, given_base: dict[str, Any],
                 request: dict[str, Any] | None = None) -> str:
    """Reconstruct one input into ``final`` (written under a temporary name); a summary line.
    ``request``: the settings recorded in the output (compared on a rerun).
    """
    from .cli import _background, resolve_layout, resolve_optics, resolve_otf
    from .engine.lazy import arrange_lazy, close_files, estimation_plane, make_job, open_lazy
    from .engine.outputs import OutputSet

    t_start = time.perf_counter()
    from .engine.sequence import select_frames

    try:
        raw, source = open_lazy(path, args.channel)
    except SimInputError:
        if not args.mosaic:
            raise
        from .engine.io import read_raw

        raw = read_raw(path, require_frames=False)  # a single 2-D mosaic image: one plane, read whole
    try:
        if args.frames or args.mosaic:
            from .engine.mosaic import apply_mosaic

            raw = apply_mosaic(select_frames(raw, args.frames), args.mosaic)
            import dask.array as da

            source = raw.frames if hasattr(raw.frames, "dask") else da.from_array(raw.frames)
        layout = resolve_layout(raw, args)
        stack = arrange_lazy(source, layout)
        from .engine.parameters import load_parameters_json

        known, known_base = load_parameters_json(args.k_from) if args.k_from else (None, {})
        optics = resolve_optics(raw, args, given_base or known_base)
        if given is not None:
            check_pattern_optics(given, optics)
        otf = resolve_otf(args, optics)
        background = _background(args, raw)
        n_t, n_z, n_a, n_p, ny, nx = stack.shape
        progress_on = not args.no_progress
        if given is not None:
            params: PatternParameters | list[PatternParameters] = given
            estimated_on: Any = "parameters file"
        elif args.per_time_point:
            import dask

            est = [dask.delayed(_estimate_params)(estimation_plane(stack, t), optics, otf, args.orders,
                                                  background, f"time point {t}", known) for t in range(n_t)]
            params = []
            bar = Progress(f"{path.name} estimating", n_t, progress_on, "time points")
            step = max(1, 2 * executor.workers)
            for s in range(0, n_t, step):
                params += executor.compute(dask.delayed(list)(est[s:s + step]))
                bar.update(len(est[s:s + step]))
            bar.close()
            estimated_on = "every time point"
        else:
            when = args.estimate_on
            plane = np.asarray(executor.compute(estimation_plane(stack, "mean" if when == "mean" else int(when))))
            params = _estimate_params(plane, optics, otf, args.orders, background,
                                      f"time point {when}" if when != "mean" else "mean of the time points", known)
            estimated_on = "mean of all time points" if when == "mean" else f"time point {int(when)}"
        if known is not None and given is None:
            estimated_on = f"{estimated_on} (phases; k from {args.k_from})"
        for p in ([params] if isinstance(params, PatternParameters) else params):
            if (p.n_angles, p.n_phases) != (n_a, n_p):
                raise SimInputError(f"the parameters describe {p.n_angles} angles × {p.n_phases} phases "
                                    f"but the stack has {n_a} × {n_p}")
        if getattr(args, "denoiser", None):  # raw frames denoised in dask tasks before the reconstruction
            from .denoise_cli import denoise_lazy

            stack = denoise_lazy(stack, args.denoiser, optics, params, background, args.denoiser_device)
        settings = FilterSettings(FilterSettings().wiener if args.wiener is None else args.wiener, args.apo_cutoff,
                                  args.apo_bend, args.attenuation, args.attenuation_fwhm)
        pinn = None
        if args.method == "pinn":
            pinn = {"mode": args.mode, "seed": args.seed, "uncertainty_samples": 0}
            if args.iterations:
                pinn["iterations"] = args.iterations
        job = make_job(optics, params, otf, settings, background, args.method, pinn, auto_wiener=args.wiener is None)
        out_px = optics.pixel_size_um / 2
        params_meta = (params.to_dict(optics) if isinstance(params, PatternParameters)
                       else [p.to_dict(optics) for p in params])
        meta = {"kind": "reconstruction", "method": args.method, "source": str(raw.path), "name": final.name,
                "optics": {**asdict(optics), "pixel_size_um": out_px}, "raw_pixel_size_um": optics.pixel_size_um,
                "params": params_meta, "estimated_on": estimated_on, "filter": asdict(settings),
                "layout": asdict(layout), "background": background,
                **({"z_step_um": raw.z_step_um} if raw.z_step_um else {}),
                **({"channel": args.channel} if args.channel is not None else {}),
                **({"pinn": pinn} if pinn else {}),
                **({"denoiser": str(args.denoiser)} if getattr(args, "denoiser", None) else {})}
        shape = (n_t, n_z, 2 * ny, 2 * nx)
        batch_t = max(1, math.ceil(2 * executor.workers / n_z))
        meta["request"] = request
        bar = Progress(path.name, n_t * n_z, progress_on)
        with OutputSet(args.overwrite) as outs:  # unique temporary name, fsync, no-clobber rename
            planes = iter_planes(stack, job, executor, batch_t)
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
    from .cli import check_flag_values, check_method_flags
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
    if args.k_from and args.params:
        raise SimInputError("--k-from and --params exclude each other: --params uses a JSON exactly, "
                            "--k-from keeps only its k and refits the phases")
    if args.k_from:
        load_parameters_json(args.k_from)  # a bad file: one line before any input is read

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
                    line = process_file(path, finals[path], args, executor, given, base, request)
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
