"""napari workers for the dock: a latest-value-wins runner and one worker life cycle for the panels.

The computations themselves are Qt-free (:mod:`napari_sim_ml.session.tasks` and
:mod:`napari_sim_ml.session.learned`); here they are started in napari workers and
their results are delivered on the main thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.utils.notifications import show_error


class LatestValueRunner:
    """Run ``fn(*args)`` in a napari worker; while one runs, only the newest request waits.

    ``on_result`` is called on the main thread with each result (a latest-value-wins
    queue: intermediate requests are dropped, so a fast slider never piles up work).
    """

    def __init__(self, fn: Callable[..., Any], on_result: Callable[[Any], None]) -> None:
        self._fn = fn
        self._on_result = on_result
        self._pending: tuple[Any, ...] | None = None
        self._worker: Any = None
        self._generation = 0

    @property
    def busy(self) -> bool:
        """Whether a request runs or waits."""
        return self._worker is not None or self._pending is not None

    def submit(self, *args: Any) -> None:
        """Run ``fn(*args)`` next (replacing a request that still waits)."""
        self._pending = args
        if self._worker is None:
            self._start()

    def invalidate(self) -> None:
        """Drop the waiting request, and the result of the running one when it arrives."""
        self._generation += 1
        self._pending = None

    def _start(self) -> None:
        from napari.qt.threading import create_worker

        args, self._pending = self._pending or (), None
        generation = self._generation
        worker = create_worker(self._fn, *args, _start_thread=False)
        worker.returned.connect(lambda out: self._deliver(generation, out))
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _deliver(self, generation: int, out: Any) -> None:
        if generation == self._generation:
            self._on_result(out)

    def _finished(self) -> None:
        self._worker = None
        if self._pending is not None:
            self._start()


class WorkerSlot:
    """One worker at a time for a panel.

    It refuses a second, wires the callbacks, starts the worker, and enables the
    panel's Run / Cancel buttons as it starts and finishes.

    ``busy_message``: the sentence shown when a second run is asked for (None: refuse silently);
    ``error``: the prefix of an unexpected error's notification.
    """

    def __init__(self, busy_message: str | None, error: str, run_button: Any = None,
                 cancel_button: Any = None) -> None:
        self.busy_message, self.error = busy_message, error
        self.run_button, self.cancel_button = run_button, cancel_button
        self.worker: Any = None

    @property
    def busy(self) -> bool:
        """Whether a worker of this slot is running."""
        return self.worker is not None

    def refuse(self) -> bool:
        """Tell whether a worker still runs (and say so); call before gathering a new run's inputs."""
        if self.worker is None:
            return False
        if self.busy_message:
            show_error(self.busy_message)
        return True

    def start(self, fn: Callable[..., Any], *args: Any, returned: Callable[[Any], None],
              yielded: Callable[[Any], None] | None = None, aborted: Callable[[], None] | None = None,
              progress: dict[str, Any] | None = None) -> Any:
        """Start ``fn(*args)`` in a napari worker; returns it (None when one still runs)."""
        from napari.qt.threading import create_worker

        if self.refuse():
            return None
        worker = create_worker(fn, *args, _start_thread=False, **({"_progress": progress} if progress else {}))
        if yielded is not None:
            worker.yielded.connect(yielded)
        worker.returned.connect(returned)
        worker.errored.connect(lambda exc: show_error(f"{self.error}: {type(exc).__name__}: {exc}"))
        if aborted is not None:
            worker.aborted.connect(aborted)
        worker.finished.connect(self._finished)
        self.worker = worker
        self._buttons(running=True)
        worker.start()
        return worker

    def quit(self) -> bool:
        """Ask the running worker to stop at its next step; False when none runs."""
        if self.worker is None:
            return False
        self.worker.quit()
        return True

    def _buttons(self, running: bool) -> None:
        if self.run_button is not None:
            self.run_button.enabled = not running
        if self.cancel_button is not None:
            self.cancel_button.enabled = running

    def _finished(self) -> None:
        self.worker = None
        try:
            self._buttons(running=False)
        except RuntimeError:  # the panel was closed
            pass


class SessionWorker:
    """The dock's one main computation at a time (Estimate, Reconstruct, Reconstruct all).

    A result is handed to ``on_result`` only if the session's inputs did not change while
    it was computed (else the status says to run it again); a :class:`Failure` or an
    unexpected error becomes the status line (never a stuck "…ing") and a notification.
    ``status`` is the dock's status label, ``controls`` its :class:`Controls`,
    ``alive`` tells whether the dock still exists.
    """

    def __init__(self, session: Any, status: Any, controls: Any, alive: Callable[[], bool]) -> None:
        self.session, self.status, self.controls, self.alive = session, status, controls, alive
        self.worker: Any = None

    def start(self, fn: Callable[..., Any], args: tuple, on_result: Callable[[Any], None],
              progress: Any = None, cancellable: bool = False,
              on_failure: Callable[[Any], None] | None = None) -> Any:
        """Start ``fn(*args)``; returns the worker, or None (with a warning) while another runs."""
        from napari.qt.threading import create_worker

        from ..session.tasks import Failure
        from ._notify import notify

        if self.worker is not None:
            notify("warning", "a SIM computation is still running; wait for it or press Cancel")
            return None
        worker = create_worker(fn, *args, _start_thread=False, **({"_progress": progress} if progress else {}))
        version = self.session.version

        def returned(out: Any) -> None:
            if not self.alive():
                return
            if not self.session.is_current(version):
                self.status.setText("the inputs changed while computing; run it again")
                notify("info", "the inputs changed while computing; that result was discarded, please run it again")
            elif isinstance(out, Failure):
                self.status.setText(f"failed: {out.message}")
                if on_failure is not None:
                    on_failure(out)
                notify("error", out.message)
            else:
                on_result(out)

        def errored(exc: Exception) -> None:
            if self.alive():
                self.status.setText(f"failed: {type(exc).__name__}: {exc}")
                if on_failure is not None:
                    on_failure(Failure(f"{type(exc).__name__}: {exc}"))

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(self._finished)
        self.worker = worker
        self.controls.set_busy(True, cancellable)
        worker.start()
        return worker

    def quit(self) -> None:
        """Cancel the running computation at its next step (Reconstruct all)."""
        if self.worker is not None:
            self.worker.quit()

    def _finished(self) -> None:
        self.worker = None
        try:
            self.controls.set_busy(False)
        except RuntimeError:  # the dock was closed
            pass
