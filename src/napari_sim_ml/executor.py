"""Where batch work runs: local thread or process pools, or a dask.distributed scheduler.

:class:`Executor` runs dask collections; :func:`iter_planes` streams a lazily reconstructed
stack plane by plane through it with a bounded number of time points in flight;
:class:`Progress` is the one-line progress bar on stderr.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from .engine.errors import SimInputError


class Progress:
    """A one-line text progress bar on stderr (redrawn at most every 0.2 s, 2 s off a terminal)."""

    def __init__(self, label: str, total: int, enabled: bool = True, unit: str = "planes"):
        self.label, self.total, self.unit, self.enabled = label, max(total, 1), unit, enabled
        self.done = 0
        self.t0 = self._last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done; redraw when it is time."""
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
        """End the bar's line."""
        if self.enabled and self.tty:
            print(file=sys.stderr, flush=True)


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
        """Start computing a dask collection; a future with ``.result()``."""
        if self.client is not None:
            return self.client.compute(obj)
        return self.driver.submit(obj.compute, scheduler=self.scheduler, pool=self.pool,
                                  num_workers=self.workers)

    def compute(self, obj: Any) -> Any:
        """Compute a dask collection and wait for its result."""
        return self.submit(obj).result()

    def close(self, interrupted: bool = False) -> None:
        """Close the pools or the client (after an interrupt: without waiting for the workers)."""
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
    """Set up every worker process.

    Ctrl-C is the parent's to handle, and the worker exits as soon as its parent is gone (a
    kill -9 of the batch leaves no orphans).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def iter_planes(stack: Any, job: Any, executor: Executor, batch_t: int, window: int = 2,
                measured: Any = None) -> Iterator[np.ndarray]:
    """Yield the reconstructed planes (2Y, 2X) in (t, z) order.

    ``window`` batches of ``batch_t`` time points are in flight at a time, so memory does not grow with the series;
    ``measured``: the raw stack when ``stack`` is denoised (see ``engine.lazy.reconstruct_lazy``).
    """
    from .engine.lazy import reconstruct_lazy

    starts = iter(range(0, stack.shape[0], batch_t))
    pending: deque = deque()

    def submit_next() -> None:
        t0 = next(starts, None)
        if t0 is not None:
            raw = None if measured is None else measured[t0:t0 + batch_t]
            pending.append(executor.submit(reconstruct_lazy(stack[t0:t0 + batch_t], job, t0, raw)))

    for _ in range(window):
        submit_next()
    while pending:
        block = pending.popleft().result()
        submit_next()
        for per_t in block:
            yield from per_t
