"""fastlstm.autotune on the emulator's CPU tensors (the CUDA kernels, timed on
the host): it times the variants that can run a layer once, runs the winner
from then on, gives the results of that variant forced, keeps the winners in
a file that another process reads, and leaves alone what it is not asked to."""
import json
import os
import subprocess
import sys

import pytest
import torch

import fastlstm
from fastlstm import _autotune
from conftest import Case, make_pair, run_module

CASE = Case(dict(input_size=5, hidden_size=16), steps=3, batch=4)


@pytest.fixture
def tuner(tmp_path):
    path = tmp_path / "winners.json"
    fastlstm.autotune(True, cache_file=str(path))
    try:
        yield path
    finally:
        fastlstm.autotune(False)
        _autotune._winners.clear()


def test_tunes_once_and_runs_the_winner_forced(tuner):
    _, fast = make_pair(**CASE.config)
    with fastlstm.backend("emulated", order="random", seed=2):
        runs = _autotune.tuning_runs
        tuned = run_module(fast, CASE)
        again = run_module(fast, CASE)
        assert _autotune.tuning_runs == runs + 1  # the second call finds the winner
        (winner,) = set(_autotune._winners.values())
        assert winner in fastlstm._backend.KERNELS and winner not in ("auto", "step")
    for key, value in tuned.items():
        assert torch.equal(value, again[key]), key
    with fastlstm.backend("emulated", kernel=winner, order="random", seed=2):
        forced = run_module(fast, CASE)
    for key in ("output", "h_n", "c_n"):
        assert torch.equal(tuned[key], forced[key]), key


def test_winners_are_read_back_by_another_process(tuner):
    _, fast = make_pair(**CASE.config)
    with fastlstm.backend("emulated"):
        run_module(fast, CASE)
    saved = json.loads(tuner.read_text())
    assert saved == _autotune._winners and saved
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import fastlstm\nfrom fastlstm import _autotune\n"
        "from conftest import Case, make_pair, run_module\n"
        f"fastlstm.autotune(True, cache_file={str(tuner)!r})\n"
        "_, fast = make_pair(input_size=5, hidden_size=16)\n"
        "with fastlstm.backend('emulated'):\n"
        "    run_module(fast, Case(dict(input_size=5, hidden_size=16), steps=3, batch=4))\n"
        "print(_autotune.tuning_runs)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0"


def test_off_forced_and_native_cpu_are_left_alone(tuner):
    _, fast = make_pair(**CASE.config)
    runs = _autotune.tuning_runs
    run_module(fast, CASE)  # the CPU backend has no variants
    with fastlstm.backend("emulated", kernel="step_narrow"):
        run_module(fast, CASE)
    fastlstm.autotune(False)
    with fastlstm.backend("emulated"):
        run_module(fast, CASE)
    assert _autotune.tuning_runs == runs and not _autotune._winners
