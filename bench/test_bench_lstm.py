"""fastlstm against torch.nn.LSTM, same weights, same inputs, same run.

Each (shape, mode) is one benchmark group holding both implementations, so
their ratio comes from one run on one machine. Timed run:
    python -m pytest bench --benchmark-only --benchmark-json=bench/results/cpu.json
    python bench/report.py bench/results/cpu.json
CI runs this file with --benchmark-disable as a smoke test."""
import pytest
import torch

import fastlstm

# (name, T, B, input size, hidden size, layers, bidirectional)
SHAPES = [
    ("fastrnns T100 B64 H512", 100, 64, 512, 512, 1, False),
    ("small T256 B1 H128", 256, 1, 128, 128, 1, False),
    ("stacked T100 B32 H256 2-layer bidir", 100, 32, 256, 256, 2, True),
]
IMPLS = ["torch", "fastlstm"]


def build(impl, shape):
    _, steps, batch, isize, hidden, layers, bidir = shape
    torch.manual_seed(0)
    ref = torch.nn.LSTM(isize, hidden, layers, bidirectional=bidir)
    model = ref if impl == "torch" else fastlstm.LSTM.from_torch(ref)
    return model, torch.randn(steps, batch, isize)


def inference(model, x):
    with torch.no_grad():
        return model(x)


def training_step(model, x):
    x = x.detach().requires_grad_()
    out, (h_n, c_n) = model(x)
    (out.sum() + h_n.sum() + c_n.sum()).backward()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_lstm(benchmark, machine, impl, mode, shape):
    model, x = build(impl, shape)
    benchmark.group = f"{shape[0]} {mode}"
    benchmark.extra_info.update(machine, impl=impl, mode=mode, shape=shape[0], dtype="float32",
                                device="cpu")
    run = inference if mode == "fwd" else training_step
    benchmark.pedantic(run, args=(model, x), rounds=15, iterations=1, warmup_rounds=3)
