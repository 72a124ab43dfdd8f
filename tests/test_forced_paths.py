"""CPU paths chosen once per process, each checked against nn.LSTM in a
subprocess forced onto it: the GEMMs through oneDNN's brgemm ukernel or
ATen's mm (FASTLSTM_CPU_GEMM), and the persistent recurrence on or off
(FASTLSTM_CPU_PERSISTENT)."""
import os
import subprocess
import sys

import pytest

PARITY_SCRIPT = """
import torch, fastlstm
from torch.nn.utils.rnn import pack_sequence
torch.manual_seed(0)
for size, hidden, config in ((4, 6, dict(num_layers=2, bidirectional=True)),
                             (4, 6, dict(proj_size=3)),
                             (12, 40, dict(num_layers=2, bidirectional=True))):
    ref = torch.nn.LSTM(size, hidden, **config)
    fast = fastlstm.LSTM.from_torch(ref)
    for x in (torch.randn(6, 9, size), pack_sequence([torch.randn(n, size) for n in (6, 4, 4, 1)])):
        outs = []
        for model in (ref, fast):
            model.zero_grad()
            y, (h, c) = model(x)
            y = y if isinstance(y, torch.Tensor) else y.data
            (y.sum() + h.sum() + c.sum()).backward()
            outs.append([y, h, c] + [p.grad for p in model.parameters()])
        for a, b in zip(*outs):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
print("parity ok")
"""

PATHS = [("FASTLSTM_CPU_GEMM", "aten"), ("FASTLSTM_CPU_GEMM", "default"),
         ("FASTLSTM_CPU_PERSISTENT", "0"), ("FASTLSTM_CPU_PERSISTENT", "1")]


@pytest.mark.parametrize("variable,value", PATHS, ids=[f"{v}={x}" for v, x in PATHS])
def test_parity_on_each_forced_path(variable, value):
    env = dict(os.environ, **{variable: value})
    result = subprocess.run([sys.executable, "-c", PARITY_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "parity ok" in result.stdout
