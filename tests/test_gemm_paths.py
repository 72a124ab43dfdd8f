"""The CPU backend runs its GEMMs through oneDNN's brgemm ukernel where the CPU
and torch build have one, else through ATen's mm. The choice is made once per
process, so the fallback is checked in a subprocess forced onto it."""
import os
import subprocess
import sys

import pytest

PARITY_SCRIPT = """
import torch, fastlstm
from torch.nn.utils.rnn import pack_sequence
torch.manual_seed(0)
for config in (dict(num_layers=2, bidirectional=True), dict(proj_size=3)):
    ref = torch.nn.LSTM(4, 6, **config)
    fast = fastlstm.LSTM.from_torch(ref)
    for x in (torch.randn(5, 3, 4), pack_sequence([torch.randn(n, 4) for n in (5, 3, 2)])):
        outs = []
        for model in (ref, fast):
            model.zero_grad()
            y, (h, c) = model(x)
            y = y.data if hasattr(y, "data") and not isinstance(y, torch.Tensor) else y
            (y.sum() + h.sum() + c.sum()).backward()
            outs.append([y, h, c] + [p.grad for p in model.parameters()])
        for a, b in zip(*outs):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
print("parity ok")
"""


@pytest.mark.parametrize("gemm", ["aten", "default"])
def test_parity_on_each_gemm_path(gemm):
    env = dict(os.environ, FASTLSTM_CPU_GEMM=gemm)
    result = subprocess.run([sys.executable, "-c", PARITY_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "parity ok" in result.stdout
