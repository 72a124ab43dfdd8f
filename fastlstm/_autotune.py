"""fastlstm.autotune: time every CUDA kernel variant that can run a layer, once
per (device, dtype, shape, direction, training or not), and run the fastest
from then on; opt-in, like torch.backends.cudnn.benchmark. Results change
only where it is on (variants round differently); a fixed choice stays
bitwise deterministic. The winners live for the process, and in a JSON file
when one is named, read back by later processes. It tunes the forward
kernel of layers the modules run through fastlstm.lstm_layer on a GPU (or
the emulator's CPU tensors); the backward keeps the glue's own choice, and
a kernel forced with fastlstm.backend(kernel=...) is left alone. Like
cudnn.benchmark it changes a process-wide setting around each call: do not
run layers from several threads while tuning."""
import json
import os
import statistics
import tempfile
import time

import torch

from . import _backend

_state = {"enabled": False, "file": None}
_winners = {}
tuning_runs = 0  # tunings done by this process (tests read it)


def autotune(enabled=True, cache_file=None):
    """Turn the autotuner on or off; cache_file: a JSON file of winners to read
    now and to add each new winner to."""
    _state.update(enabled=bool(enabled), file=cache_file)
    if enabled and cache_file and os.path.exists(cache_file):
        with open(cache_file) as f:
            _winners.update(json.load(f))


def enabled():
    return _state["enabled"]


def _tunable(input):
    return (enabled() and not torch.compiler.is_compiling()
            and _backend.backend_state()[1] == "auto"
            and (input.is_cuda or _backend.backend_state()[0] == "emulated"))


def _key(input, h0, w_ih, w_hr, batch_sizes, reverse, save):
    steps = batch_sizes.tolist() if batch_sizes is not None else input.shape[0] // max(h0.shape[0], 1)
    return "|".join(str(v) for v in (
        input.device, input.dtype, steps, h0.shape[0], w_ih.shape[1], w_ih.shape[0] // 4,
        w_hr.shape[0] if w_hr is not None else 0, reverse, save,
        torch.backends.cudnn.allow_tf32 if input.dtype == torch.float32 else ""))


def _seconds(run, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    run()
    times = []
    for _ in range(3):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _tune(args, save):
    """The fastest variant for the layer call args (the op's arguments)."""
    global tuning_runs
    tuning_runs += 1
    timed = {}
    with torch.no_grad():
        for kernel in _backend.KERNELS:
            if kernel in ("auto", "step"):
                continue
            try:
                with _backend.forced_kernel(kernel):
                    run = lambda: torch.ops.fastlstm.lstm_layer(*args, save)  # noqa: E731
                    timed[kernel] = _seconds(run, args[0].device)
            except RuntimeError:  # the variant cannot run this layer
                continue
    return min(timed, key=timed.get)


def _remember(key, kernel):
    _winners[key] = kernel
    path = _state["file"]
    if path:
        folder = os.path.dirname(os.path.abspath(path))
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
            json.dump(_winners, f, indent=1, sort_keys=True)
        os.replace(f.name, path)


def kernel_for(input, h0, c0, w_ih, w_hh, bias, w_hr, batch_sizes, reverse, save):
    """The variant to force for this call, or None (the glue chooses)."""
    if not _tunable(input):
        return None
    key = _key(input, h0, w_ih, w_hr, batch_sizes, reverse, save)
    if key not in _winners:
        args = (input.detach(), h0.detach(), c0.detach(), w_ih.detach(), w_hh.detach(),
                None if bias is None else bias.detach(), None if w_hr is None else w_hr.detach(),
                batch_sizes, reverse)
        _remember(key, _tune(args, save))
    return _winners[key]
