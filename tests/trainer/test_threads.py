"""numpy's BLAS beside torch (trainer.threads): one thread while the trainer's commands and a slide's scoring run,
as it was afterwards."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from trainer import cli, threads
from trainer.commands import data as data_commands


def _blas_threads() -> set[int]:
    found = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    if not found:
        pytest.skip("numpy has no BLAS library that threadpoolctl can see")
    return found


def test_single_threaded_blas_holds_one_thread_and_restores_the_setting():
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == {2}
        with threads.single_threaded_blas():
            assert _blas_threads() == {1}
        assert _blas_threads() == {2}


def test_blas_threads_env_names_every_variable_or_none():
    assert threads.blas_threads_env(3) == dict.fromkeys(threads.BLAS_THREAD_VARIABLES, "3")
    assert threads.blas_threads_env(0) == {}


def test_a_trainer_command_runs_with_one_blas_thread(monkeypatch, tmp_path):
    seen = []

    def fake_synth(args):
        seen.append(_blas_threads())
        return 0

    monkeypatch.setattr(data_commands, "cmd_synth", fake_synth)
    with threadpool_limits(limits=2, user_api="blas"):
        cli.main(["data", "synth", str(tmp_path / "synth")])
        assert _blas_threads() == {2}
    assert seen == [{1}]


def test_set_torch_threads_sets_them_and_none_keeps_torchs_own():
    import torch

    before = torch.get_num_threads()
    try:
        threads.set_torch_threads(1)
        assert torch.get_num_threads() == 1
        threads.set_torch_threads(None)
        threads.set_torch_threads(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
