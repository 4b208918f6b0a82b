import numpy as np
import pytest

from napari_sim_ml.engine.bands import band_orders, preprocess, separate_bands, separate_positive_bands


@pytest.mark.slow
@pytest.mark.parametrize("n_phases, n_orders", [(3, 1), (5, 2), (7, 2)])
def test_separation_inverts_the_mixing_for_unequal_phases(n_phases, n_orders):
    rng = np.random.default_rng(n_phases)
    phases = np.sort(rng.uniform(-np.pi, np.pi, n_phases))
    orders = band_orders(n_orders)
    n_bands = len(orders) // 2 + 1
    base = rng.standard_normal((n_bands, 16, 16)) + 1j * rng.standard_normal((n_bands, 16, 16))
    base[0] = base[0].real
    true = {0: base[0]}
    for b in range(1, n_orders + 1):
        true[b], true[-b] = base[b], np.conj(base[b])
    frames = sum(np.exp(1j * o * phases)[:, None, None] * true[o][None] for o in orders).real
    bands = separate_bands(frames, phases, n_orders)
    for i, o in enumerate(orders):
        np.testing.assert_allclose(bands[i], true[o], atol=1e-4)
    band0, positive = separate_positive_bands(frames.astype(np.float32), phases, n_orders)
    np.testing.assert_allclose(band0, true[0].real, atol=1e-4)
    for b in range(1, n_orders + 1):
        np.testing.assert_allclose(positive[b - 1], true[b], atol=1e-4)


@pytest.mark.slow
def test_preprocess_subtracts_equalises_and_tapers_without_touching_the_input():
    rng = np.random.default_rng(0)
    plane = rng.uniform(100, 200, (2, 3, 64, 64)).astype(np.float32)
    plane[0, 1] *= 1.5  # a brighter frame (laser flicker)
    before = plane.copy()
    out = preprocess(plane, background=100.0)
    np.testing.assert_array_equal(plane, before)
    means = out.mean(axis=(-2, -1))
    np.testing.assert_allclose(means, means.mean(), rtol=0.02)
    np.testing.assert_allclose(out[..., 0, :], means.mean(), rtol=0.05)  # border fades to the mean


@pytest.mark.slow
def test_serial_blas_limits_while_inside_and_restores_after_overlapping_threads():
    import threading

    from threadpoolctl import threadpool_info

    from napari_sim_ml.engine.bands import serial_blas

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    assert blas_threads(), "no BLAS library is loaded: this test would pass without testing anything"
    before = blas_threads()
    inside, first_in, second_out = [], threading.Event(), threading.Event()

    def first():
        with serial_blas():
            first_in.set()
            second_out.wait(5)
            inside.append(blas_threads())  # still limited although the second thread has left

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with serial_blas():
        inside.append(blas_threads())
    second_out.set()
    worker.join(5)
    assert len(inside) == 2 and all(threads and all(n == 1 for n in threads) for threads in inside)
    assert blas_threads() == before


def _blas_threads():
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _in_thread(fn):
    import threading

    out = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    worker.join(10)
    return out[0]


def test_serial_blas_leaves_no_thread_owning_the_blas_limit():
    """threadpoolctl ≥ 3.8 lets one thread own OpenBLAS's thread count: a block entered on the main thread
    (an in-process estimate) must not keep it, or the limits of later worker threads do nothing."""
    import threading

    from napari_sim_ml.engine.bands import serial_blas

    assert _blas_threads(), "no BLAS library is loaded: this test would pass without testing anything"
    before = _blas_threads()
    with serial_blas():  # on the main thread
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before

    def limited_in_a_worker():
        with serial_blas():
            return _blas_threads()

    assert all(n == 1 for n in _in_thread(limited_in_a_worker))
    assert _blas_threads() == before
    # set by one thread, restored by another: the one that leaves last
    entered, leave_first = threading.Event(), threading.Event()

    def first():
        with serial_blas():
            entered.set()
            leave_first.wait(5)

    worker = threading.Thread(target=first)
    worker.start()
    entered.wait(5)
    with serial_blas():
        leave_first.set()
        worker.join(5)
        assert all(n == 1 for n in _blas_threads())  # still limited after the first thread left
    assert _blas_threads() == before
