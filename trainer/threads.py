"""numpy's BLAS beside torch: how many threads it may run. Torch sets its own (``--threads``,
``Settings.torch_threads``); numpy's OpenBLAS starts one thread per core by default, and its threads busy-wait
after each product. The products here are small (the trust checks' image fit, the OOD score), so the extra threads
gain nothing and spin against torch's pass: on a 2-core AMD EPYC, scoring a slide ran at 224 tiles/s with the
default and 608 with one BLAS thread, batched ``predict_images`` at 363 and 622 (bench/README.md, issue 26)."""

from __future__ import annotations

from contextlib import contextmanager

# numpy's BLAS (OpenBLAS) and OpenMP read these once, when a process first imports them.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads_env(threads: int) -> dict[str, str]:
    """The variables that start a child process (the app's model worker) with ``threads`` BLAS / OpenMP threads
    (0: their own defaults). The caller lets its own environment win, so a user's setting is kept."""
    return {name: str(threads) for name in BLAS_THREAD_VARIABLES} if threads and threads > 0 else {}


def set_torch_threads(threads: int | None) -> None:
    """A command's ``--threads``: torch's CPU threads (None or 0: torch's default, all cores)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def limit_blas(threads: int = 1):
    """Hold numpy's BLAS at ``threads`` in this process, already started (threadpoolctl, which reaches the loaded
    library); returns the limiter: ``.restore_original_limits()`` undoes it, and it is a context manager too."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


@contextmanager
def single_threaded_blas():
    """numpy's BLAS at one thread for the block (a command, a slide's scoring), then as it was."""
    with limit_blas(1):
        yield
