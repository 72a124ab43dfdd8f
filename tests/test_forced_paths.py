"""The CPU engine chosen once per process, each checked against nn.LSTM in a
subprocess forced onto it: the one the CPU's instruction set gives (AVX-512
or AVX2+FMA on x86-64), the AVX2 one (FASTLSTM_CPU_ISA=avx2), and the
generic one (16-byte vectors, the engine of CPUs without AVX2), forced with
FASTLSTM_CPU_ISA=generic; float32 and float64 take the same engine. Under
each, the tests of the engine's paths (test_cpu_paths, test_cell,
test_overlapped_backward, test_determinism: every SIMD path in both
dtypes) run again in a subprocess."""
import os
import platform
import subprocess
import sys

import pytest

PARITY_SCRIPT = """
import torch, fastlstm
from torch.nn.utils.rnn import pack_sequence
torch.manual_seed(0)
tolerances = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}
for dtype, tol in tolerances.items():
    for size, hidden, config, batch in ((4, 6, dict(num_layers=2, bidirectional=True), 9),
                                        (4, 6, dict(proj_size=3), 9),
                                        (12, 40, dict(num_layers=2, bidirectional=True), 3),
                                        (12, 40, dict(), 1)):
        ref = torch.nn.LSTM(size, hidden, dtype=dtype, **config)
        fast = fastlstm.LSTM.from_torch(ref)
        for x in (torch.randn(6, batch, size, dtype=dtype),
                  pack_sequence([torch.randn(n, size, dtype=dtype) for n in (6, 4, 4, 1)]),
                  torch.randn(1, batch, size, dtype=dtype)):
            outs = []
            for model in (ref, fast):
                model.zero_grad()
                y, (h, c) = model(x)
                y = y if isinstance(y, torch.Tensor) else y.data
                (y.sum() + h.sum() + c.sum()).backward()
                outs.append([y, h, c] + [p.grad for p in model.parameters()])
            for a, b in zip(*outs):
                torch.testing.assert_close(b, a, **tol)
x = torch.linspace(-30, 30, 10001, dtype=torch.float64)
sig, tanh = torch.ops.fastlstm._gate_activations(x.float())
assert (sig.double() - torch.sigmoid(x)).abs().max() < 2 ** -21
sig, tanh = torch.ops.fastlstm._gate_activations(x)
torch.testing.assert_close(sig, torch.sigmoid(x), atol=1e-15, rtol=1e-14)
torch.testing.assert_close(tanh, torch.tanh(x), atol=1e-15, rtol=1e-14)
for under in (torch.linspace(-120, -80, 40001), torch.linspace(-760, -700, 60001, dtype=torch.float64)):
    assert torch.equal(torch.ops.fastlstm._gate_activations(under)[0] == 0, torch.sigmoid(under) == 0)
for dtype, value in ((torch.float32, 3.4e38), (torch.float32, float("-inf")),
                     (torch.float64, 1.7e308), (torch.float64, float("-inf"))):
    ref = torch.nn.LSTM(2, 3, dtype=dtype)
    fast = fastlstm.LSTM.from_torch(ref)
    outs = []
    for model in (ref, fast):
        model.zero_grad()
        x = torch.tensor([[[value, 1.0]], [[0.5, -value]]], dtype=dtype, requires_grad=True)
        y, (h, c) = model(x)
        (y.sum() + c.sum()).backward()
        outs.append([y, h, c, x.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, equal_nan=True, atol=1e-5, rtol=1e-4)
print("parity ok")
"""

ENGINES = ["default", "avx2", "generic"]


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f
                         if line.startswith("flags")), None)
    except OSError:
        return None


def widest_engine(flags, cap):
    """The engine cpu_engine picks on a CPU with these flags, at most `cap`."""
    order = [("avx512", {"avx512f", "avx512dq", "avx512vl", "avx512bw"}),
             ("avx2", {"avx2", "fma"}), ("generic", set())]
    names = [name for name, _ in order]
    start = names.index(cap) if cap in names else 0
    return next(name for name, needs in order[start:] if needs <= flags)


@pytest.mark.parametrize("isa", ENGINES)
def test_parity_on_each_engine(isa):
    env = dict(os.environ, FASTLSTM_CPU_ISA=isa)
    result = subprocess.run([sys.executable, "-c", PARITY_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "parity ok" in result.stdout


TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ENGINE_PATH_TESTS = ["test_cpu_paths.py", "test_cell.py", "test_overlapped_backward.py",
                     "test_determinism.py"]


@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_engine_paths_on_each_engine(isa, request):
    """The default engine runs these files in this session already."""
    if request.config.getoption("--emulate"):
        pytest.skip("the engines run CPU tensors only on the native backend")
    env = dict(os.environ, FASTLSTM_CPU_ISA=isa)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               *(os.path.join(TESTS_DIR, name) for name in ENGINE_PATH_TESTS)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900,
                            cwd=TESTS_DIR)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]


def test_engine_name_is_reported():
    script = "import torch, fastlstm; print(torch.ops.fastlstm._cpu_engine())"
    for isa in ENGINES:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=dict(os.environ, FASTLSTM_CPU_ISA=isa), timeout=120)
        assert out.returncode == 0, out.stderr
        name = out.stdout.strip()
        flags = cpu_flags()
        if flags is None or platform.machine() != "x86_64":
            assert name in ("avx512", "avx2", "generic") and (isa != "generic" or name == "generic")
        else:
            assert name == widest_engine(flags, isa), (isa, sorted(flags & {"avx2", "avx512f"}))
