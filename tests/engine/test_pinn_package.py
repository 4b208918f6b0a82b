"""The PINN package: no import cycle, small modules, typed results, threads restored on every exit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.pinn import PinnResult, PinnSettings, fit_pinn, pinn_steps, torch_runtime
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.steps import run_to_end

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "napari_sim_ml" / "engine" / "pinn"


def _internal_imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
    return out


def test_the_package_has_no_import_cycle_and_small_modules():
    graph = {p.stem: _internal_imports(p) for p in PACKAGE.glob("*.py")}
    assert {"types", "fit", "noise_aware", "faithful", "net", "physics", "noise", "refine", "uncertainty"} <= set(graph)
    assert graph["types"] == set()  # the leaf everything else builds on
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, "import cycle: " + " -> ".join([*path, name])
        state[name] = 1
        for dep in graph.get(name, ()):
            visit(dep, [*path, name])
        state[name] = 2

    for name in graph:
        visit(name, [])
    for p in PACKAGE.glob("*.py"):
        assert len(p.read_text().splitlines()) <= 400, p.name


@pytest.fixture(scope="module")
def sim32():
    return simulate_acquisition("filaments", 32, photons=200, seed=1)


@pytest.fixture
def other_thread_count():
    """Run with a thread count no fit asks for (3), restore the process's afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_torch_runtime_sets_and_restores_threads_on_every_exit(other_thread_count):
    with torch_runtime("cpu", 1) as dev:
        assert dev.type == "cpu" and torch.get_num_threads() == 1
    assert torch.get_num_threads() == other_thread_count
    with pytest.raises(RuntimeError, match="inside"):
        with torch_runtime("cpu", 2):
            assert torch.get_num_threads() == 2
            raise RuntimeError("inside")
    assert torch.get_num_threads() == other_thread_count
    if not torch.cuda.is_available():
        with pytest.raises(SimInputError, match="no CUDA GPU"):
            with torch_runtime("cuda", 1):
                pass
        assert torch.get_num_threads() == other_thread_count


def test_failed_fits_leave_the_thread_count_alone(sim32, other_thread_count, monkeypatch):
    from napari_sim_ml.engine.pinn import noise, noise_aware

    settings = PinnSettings(iterations=4, threads=1)
    with monkeypatch.context() as m:  # the memory check fails inside the runtime block
        m.setattr(noise, "available_memory_bytes", lambda: 10 * 2**20)
        with pytest.raises(SimInputError, match="crop the field of view"):
            fit_pinn(sim32.raw, sim32.optics, sim32.params, settings, background=sim32.offset)
    assert torch.get_num_threads() == other_thread_count
    with monkeypatch.context() as m:  # the loss fails in the middle of the fit
        m.setattr(noise_aware, "total_variation", lambda o, eps: o.sum() * float("nan"))
        with pytest.raises(SimInputError, match="NaN"):
            fit_pinn(sim32.raw, sim32.optics, sim32.params, settings, background=sim32.offset)
    assert torch.get_num_threads() == other_thread_count
    gen = pinn_steps(sim32.raw, sim32.optics, sim32.params, settings, background=sim32.offset)
    next(gen)
    assert torch.get_num_threads() == 1  # set while the fit runs
    gen.close()
    assert torch.get_num_threads() == other_thread_count


@pytest.mark.parametrize("mode", ["noise-aware", "faithful"])
def test_both_fits_return_a_pinn_result(sim32, mode):
    res = fit_pinn(sim32.raw, sim32.optics, sim32.params, PinnSettings(mode=mode, iterations=3, threads=1),
                   background=sim32.offset)
    assert isinstance(res, PinnResult)
    assert res.image.shape == (64, 64) and res.residual.shape == (32, 32)
    assert res.iterations == 3 and len(res.losses) == 3 and res.seconds > 0 and res.device == "cpu"
    assert (res.params is not None) == (mode == "noise-aware") and (res.noise is not None) == (mode == "noise-aware")


def test_run_to_end_reports_every_step_and_closes_the_generator_on_error():
    closed = []

    def steps():
        try:
            yield from range(5)
            return "done"
        finally:
            closed.append(True)

    seen: list[int] = []
    assert run_to_end(steps(), seen.append) == "done" and seen == [0, 1, 2, 3, 4] and closed == [True]

    def stop_at_two(i):
        if i == 2:
            raise KeyboardInterrupt

    gen = steps()
    with pytest.raises(KeyboardInterrupt):
        run_to_end(gen, stop_at_two)
    assert closed == [True, True]  # the generator's cleanup ran at once, not at garbage collection
    with pytest.raises(StopIteration):
        next(gen)
