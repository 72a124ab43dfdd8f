"""The corpus of bad (and odd but valid) inputs of tests/bad_input_corpus.py,
run in worker processes (tests/fuzz_worker.py) so that a crash or a hang
fails its own case, with its reproducer, instead of killing pytest.

One worker runs every case in turn; if it dies or a case runs past
CASE_TIMEOUT_S, the case in progress is recorded as crashed or hung, and a
new worker takes the remaining cases."""
import inspect
import json
import os
import re
import select
import subprocess
import sys

import pytest

from bad_input_corpus import CORPUS

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_worker.py")
CASE_TIMEOUT_S = 60


def read_line(proc, timeout):
    """The worker's next line; "" when it ended, None when timeout passed first."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else None


def run_worker(names, results, timeout=CASE_TIMEOUT_S):
    """Runs names in one worker until it finishes, dies or hangs (a case
    running past timeout seconds); returns the names it did not reach."""
    proc = subprocess.Popen([sys.executable, WORKER, *names], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    current, hung = None, False
    try:
        while True:
            line = read_line(proc, timeout)
            hung = line is None
            if not line:
                break
            message = json.loads(line)
            if "start" in message:
                current = message["start"]
            else:
                results[message.pop("name")] = message
                current = None
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    if current is None:
        return []
    what = "hung" if hung else f"crashed (exit code {proc.returncode})"
    results[current] = {"died": f"{what}; stderr tail: {stderr[-1500:]}"}
    return names[names.index(current) + 1:]


@pytest.fixture(scope="module")
def corpus_results():
    results, remaining = {}, list(CORPUS)
    while remaining:
        remaining = run_worker(remaining, results)
    return results


def reproducer(name):
    make, _ = CORPUS[name]
    return (f"\nreproduce: python {WORKER} {name}\n" +
            (inspect.getsource(getattr(make, "source", make))
             if not name.startswith("random_op_args_") else
             f"bad_input_corpus.random_op_args({name.rsplit('_', 1)[1]})"))


def check_raised(result, expect):
    fast = result["fast"]
    assert fast and "raised" in fast, f"returned instead of raising {expect.error.__name__}"
    assert fast["raised"] == expect.error.__name__, fast
    assert re.search(expect.match, fast["message"]), fast["message"]
    torch_result = result["torch"]
    if expect.like_torch and torch_result is not None:
        assert torch_result.get("raised") == fast["raised"], \
            f"torch: {torch_result}, fastlstm: {fast}"


def check_random(result):
    """A mutated op argument: refused naming what was expected and given, or,
    if the mutation happens to be valid, the reference equations' result."""
    fast = result["fast"]
    if "raised" in fast:
        assert fast["raised"] in ("RuntimeError", "TypeError"), fast
        assert re.search("expected", fast["message"]), fast["message"]
    else:
        assert result["compared"] == "equal", result


@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_input_case(name, corpus_results):
    result = corpus_results[name]
    expect = CORPUS[name][1]
    context = reproducer(name)
    assert "died" not in result, result["died"] + context
    assert "setup_error" not in result, result["setup_error"] + context
    try:
        if name.startswith("random_op_args_"):
            check_random(result)
        elif expect.error is None:
            assert result["fast"] == {"returned": True}, result["fast"]
            assert result["compared"] == "equal", result
        else:
            check_raised(result, expect)
    except AssertionError as error:
        raise AssertionError(f"{error}{context}") from None


@pytest.mark.parametrize("failure", ["os.abort()", "time.sleep(60)"])
def test_a_crash_or_hang_fails_its_case_only(failure, tmp_path, monkeypatch):
    """The runner's own check: a worker that dies or hangs in a case reports
    that case, and the cases after it still run."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, os, sys, time\n"
        "print(json.dumps({'start': sys.argv[1]}), flush=True)\n"
        f"if sys.argv[1] == 'first': {failure}\n"
        "for n in sys.argv[1:]:\n"
        "    print(json.dumps({'start': n}), flush=True)\n"
        "    print(json.dumps({'name': n, 'fast': None}), flush=True)\n")
    monkeypatch.setattr(sys.modules[__name__], "WORKER", str(script))
    results, remaining = {}, ["first", "second"]
    while remaining:
        remaining = run_worker(remaining, results, timeout=3)
    assert ("crashed" if "abort" in failure else "hung") in results["first"]["died"]
    assert results["second"] == {"fast": None}
