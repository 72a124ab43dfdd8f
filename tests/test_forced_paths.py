"""The CPU engine chosen once per process, each checked against nn.LSTM in a
subprocess forced onto it: the one the CPU's instruction set gives (AVX-512
or AVX2+FMA on x86-64), the AVX2 one (FASTLSTM_CPU_ISA=avx2), and the
generic one (16-byte vectors, the engine of CPUs without AVX2 and of every
float64 layer), forced with FASTLSTM_CPU_ISA=generic."""
import os
import platform
import subprocess
import sys

import pytest

PARITY_SCRIPT = """
import torch, fastlstm
from torch.nn.utils.rnn import pack_sequence
torch.manual_seed(0)
for size, hidden, config, batch in ((4, 6, dict(num_layers=2, bidirectional=True), 9),
                                    (4, 6, dict(proj_size=3), 9),
                                    (12, 40, dict(num_layers=2, bidirectional=True), 3),
                                    (12, 40, dict(), 1)):
    ref = torch.nn.LSTM(size, hidden, **config)
    fast = fastlstm.LSTM.from_torch(ref)
    for x in (torch.randn(6, batch, size),
              pack_sequence([torch.randn(n, size) for n in (6, 4, 4, 1)]),
              torch.randn(1, batch, size)):
        outs = []
        for model in (ref, fast):
            model.zero_grad()
            y, (h, c) = model(x)
            y = y if isinstance(y, torch.Tensor) else y.data
            (y.sum() + h.sum() + c.sum()).backward()
            outs.append([y, h, c] + [p.grad for p in model.parameters()])
        for a, b in zip(*outs):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
sig, tanh = torch.ops.fastlstm._gate_activations(torch.linspace(-30, 30, 10001))
assert (sig.double() - torch.sigmoid(torch.linspace(-30, 30, 10001).double())).abs().max() < 2 ** -21
under = torch.linspace(-120, -80, 40001)
assert torch.equal(torch.ops.fastlstm._gate_activations(under)[0] == 0, torch.sigmoid(under) == 0)
ref = torch.nn.LSTM(2, 3)
fast = fastlstm.LSTM.from_torch(ref)
for value in (3.4e38, float("-inf")):
    outs = []
    for model in (ref, fast):
        model.zero_grad()
        x = torch.tensor([[[value, 1.0]], [[0.5, -value]]], requires_grad=True)
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
