"""The torch runtime shared by the learned methods: device choice and CPU thread count.

One place for what the PINN fit (:mod:`.pinn.fit`), the denoiser's training
(:mod:`.denoise.train`) and its application (:mod:`.denoise.apply`) decide alike: which
device a name means, how many CPU threads torch runs on, and a block that sets both and
restores the thread count on every exit. torch is imported inside the functions only.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import SimInputError

DEVICES = ("auto", "cpu", "cuda")


def select_device(name: str) -> Any:
    """Return the torch device a device name means.

    Parameters
    ----------
    name : str
        ``"auto"`` (CUDA when a CUDA GPU is available, else the CPU), ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    torch.device
        ``cuda`` or ``cpu``.

    Raises
    ------
    SimInputError
        ``"cuda"`` without a CUDA GPU, or a name that is none of the three.
    """
    import torch

    if name not in DEVICES:
        raise SimInputError(f"unknown device '{name}'; choose auto, cpu or cuda")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SimInputError("CUDA was requested but no CUDA GPU is available; use the CPU (device 'cpu')")
        return torch.device("cuda")
    return torch.device("cpu")


def usable_cores() -> int:
    """Return the number of CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity masks on this platform (macOS, Windows)
        return os.cpu_count() or 1


def cpu_threads(requested: int | None) -> int:
    """Return the number of torch CPU threads to run on.

    Parameters
    ----------
    requested : int or None
        A thread count; None or 0 lets the machine's load decide.

    Returns
    -------
    int
        ``requested`` when given; else every usable core on a quiet machine and 1 once the
        1-minute load average reaches half the usable cores (on a shared machine spinning
        torch workers made a 2-thread denoiser step 40× slower than a 1-thread step). The
        count changes the order of floating-point sums, so pass a count for results that
        repeat exactly whatever the load.
    """
    if requested:
        return int(requested)
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform: assume a quiet machine
        return cores
    return cores if load < cores / 2 else 1


@contextmanager
def torch_runtime(device: str, threads: int | None) -> Iterator[Any]:
    """Select the device and set torch's CPU thread count for the block; yields the device.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` (see :func:`select_device`).
    threads : int or None
        CPU threads while on the CPU (see :func:`cpu_threads`); ignored on CUDA.

    Yields
    ------
    torch.device
        The selected device.

    Notes
    -----
    On every exit (normal end, exception, a closed generator) the thread count is restored
    to what it was and the memory of the block is handed back (garbage collection, the CUDA
    cache). The process-wide thread count stays changed while a generator holding the block
    is suspended between its steps.
    """
    import torch

    old_threads = torch.get_num_threads()
    dev = None
    try:
        dev = select_device(device)
        if dev.type == "cpu":
            torch.set_num_threads(cpu_threads(threads))
        yield dev
    finally:
        gc.collect()
        if dev is not None and dev.type == "cuda":
            torch.cuda.empty_cache()
        torch.set_num_threads(old_threads)


__all__ = ["DEVICES", "select_device", "usable_cores", "cpu_threads", "torch_runtime"]
