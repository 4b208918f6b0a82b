"""PINN speed on the real TIRF 256² crop (measured OTF), every refinement on: wall, CPU time, load.

    taskset -c 0 python benchmarks/bench_pinn_speed.py 1       # one thread on one core
    taskset -c 0,1 python benchmarks/bench_pinn_speed.py 2     # two threads on two cores
"""

import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pinn_real import real_sets  # noqa: E402

from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn  # noqa: E402


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    name, plane, optics, bg, otf, params = [s for s in real_sets() if s[0].startswith("TIRF")][0]
    print(name, plane.shape, "threads", threads, "affinity", sorted(os.sched_getaffinity(0)), "load", os.getloadavg())
    warm = PinnSettings(iterations=2, threads=threads)
    fit_pinn(plane[..., :32, :32], optics, params, warm, otf=otf, background=bg)  # torch import, first calls
    l0 = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    res = fit_pinn(plane, optics, params, PinnSettings(threads=threads), otf=otf, background=bg)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"{name}: {res.iterations} iterations (early stop {res.stopped_early}), wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(user+sys, all threads), load {l0:.1f} -> {os.getloadavg()[0]:.1f}, "
          f"noise inflation {res.noise.get('noise_inflation', 1.0):.2f}")


if __name__ == "__main__":
    main()
