"""One training step of a single LSTM layer per forced kernel variant: the
workload for Nsight Compute on a GPU, e.g.

    ncu --kernel-name regex:lstm_ --launch-count 8 python tools/profile_kernels.py
"""
import sys

import torch

import fastlstm

steps, batch, hidden = (int(v) for v in (sys.argv[1:] or ["50", "8", "512"]))
model = fastlstm.LSTM(hidden, hidden).cuda()
x = torch.randn(steps, batch, hidden, device="cuda")
for kernel in ("persistent", "step_narrow"):
    with fastlstm.backend("native", kernel=kernel):
        out, (h_n, c_n) = model(x)
        (out.sum() + h_n.sum() + c_n.sum()).backward()
        print(kernel, "ran", fastlstm._backend.last_kernel("cuda"))
torch.cuda.synchronize()
