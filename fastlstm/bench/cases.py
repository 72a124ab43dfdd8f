"""One benchmark case: the pair of models with the same weights, their
input, the timed step of each mode, and the parity check that runs before
any case is timed."""
import contextlib

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from ..cell import LSTMCell
from ..lstm import LSTM
from .grid import MODES

__all__ = ["build_pair", "make_step", "check_parity", "dtype_of", "dtype_name"]


def dtype_of(dtype):
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def dtype_name(dtype):
    return str(dtype_of(dtype)).removeprefix("torch.")


def build_pair(shape, device="cpu", dtype="float32", seed=0):
    """(torch module, fastlstm module with the same weights, input): [T, B, I],
    or for a packed shape a PackedSequence of its lengths (unsorted).

    The torch module is built first from a fixed seed; fastlstm copies its
    weights, so the pair is the same for every run and impl."""
    device, dtype = torch.device(device), dtype_of(dtype)
    torch.manual_seed(seed)
    factory = {"device": device, "dtype": dtype}
    if shape.cell:
        ref = nn.LSTMCell(shape.input_size, shape.hidden_size, **factory)
        fast = LSTMCell(shape.input_size, shape.hidden_size, **factory)
        fast.load_state_dict(ref.state_dict())
    else:
        ref = nn.LSTM(shape.input_size, shape.hidden_size, shape.layers,
                      bidirectional=shape.bidirectional, **factory)
        fast = LSTM.from_torch(ref)
    x = torch.randn(shape.steps, shape.batch, shape.input_size, **factory)
    if shape.packed:
        x = pack_padded_sequence(x, torch.tensor(shape.lengths()), enforce_sorted=False)
    return ref, fast, x


def _run_cell(cell, x):
    h = c = x.new_zeros(x.shape[1], cell.hidden_size)
    outs = []
    for x_t in x:
        h, c = cell(x_t, (h, c))
        outs.append(h)
    return torch.stack(outs), (h, c)


def _forward(model, x):
    """output (its rows, for a PackedSequence), (h_n, c_n) of an nn.LSTM-like
    model or of T cell steps."""
    if isinstance(model, (nn.LSTMCell, LSTMCell)):
        return _run_cell(model, x)
    out, state = model(x)
    return (out.data if isinstance(out, PackedSequence) else out), state


def _leaf(x):
    """x as a fresh leaf that requires grad (a PackedSequence: its rows)."""
    if isinstance(x, PackedSequence):
        return x._replace(data=x.data.detach().requires_grad_())
    return x.detach().requires_grad_()


def _input_tensor(x):
    """The tensor that x's gradient lands on (a PackedSequence: its rows)."""
    return x.data if isinstance(x, PackedSequence) else x


def _loss(out, h_n, c_n):
    return out.sum() + h_n.sum() + c_n.sum()


def make_step(model, x, mode):
    """The timed callable: one inference pass under no_grad ("fwd"), or one
    training step, forward and backward of out.sum() + h_n.sum() + c_n.sum()
    with the gradients set to None first ("fwd+bwd"). On CUDA it synchronizes
    before returning, so the time covers the kernels, not their launch."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    device = _input_tensor(x).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    params = list(model.parameters())
    if mode == "fwd":
        def step():
            with torch.no_grad():
                _forward(model, x)
            sync()
    else:
        x_leaf = _leaf(x)

        def step():
            _input_tensor(x_leaf).grad = None
            for p in params:
                p.grad = None
            out, (h_n, c_n) = _forward(model, x_leaf)
            _loss(out, h_n, c_n).backward()
            sync()
    return step


def _outputs(model, x, mode):
    """What the parity check compares: the outputs, and in fwd+bwd mode the
    gradients of the input and of every parameter (by name)."""
    if mode == "fwd":
        with torch.no_grad():
            out, (h_n, c_n) = _forward(model, x)
        return {"output": out, "h_n": h_n, "c_n": c_n}
    model.zero_grad(set_to_none=True)
    x = _leaf(x)
    out, (h_n, c_n) = _forward(model, x)
    _loss(out, h_n, c_n).backward()
    result = {"output": out.detach(), "h_n": h_n.detach(), "c_n": c_n.detach(),
              "grad input": _input_tensor(x).grad}
    result.update((f"grad {name}", p.grad) for name, p in model.named_parameters())
    model.zero_grad(set_to_none=True)
    return result


# Loose on purpose: the check is there so that no benchmark times a wrong
# answer, not to test accuracy (tests/ does that, tightly).
FP32_TOL = {"atol": 1e-4, "rtol": 1e-3}
LOW_PRECISION_FLOOR = {torch.float16: 2e-3, torch.bfloat16: 2e-2}


@contextlib.contextmanager
def _true_float32():
    """cuDNN in float32, not TF32, for the references of the parity check."""
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def _float32_copy(x):
    return x._replace(data=x.data.float()) if isinstance(x, PackedSequence) else x.float()


def check_parity(shape, mode, device="cpu", dtype="float32", seed=0):
    """Asserts that fastlstm matches torch on this case (raises AssertionError).

    float32/float64: outputs (and in fwd+bwd mode every gradient) match within
    FP32_TOL. float16/bfloat16: the outputs of both are compared with a
    float32 run of the same weights, and fastlstm's largest error must stay
    within twice torch's own (plus a small floor); gradients must be finite."""
    ref, fast, x = build_pair(shape, device, dtype, seed)
    with _true_float32():
        want, got = _outputs(ref, x, mode), _outputs(fast, x, mode)
    dtype = dtype_of(dtype)
    if dtype not in LOW_PRECISION_FLOOR:
        for key in want:
            # A weight gradient sums T*B products: its rounding grows with its magnitude.
            scale = max(1.0, want[key].abs().max().item())
            torch.testing.assert_close(got[key], want[key], rtol=FP32_TOL["rtol"],
                                       atol=FP32_TOL["atol"] * scale,
                                       msg=lambda m, key=key: f"{shape.name} {mode}: {key}: {m}")
        return
    with _true_float32():
        ref32 = _outputs(ref.float(), _float32_copy(x), "fwd")
    for key in ("output", "h_n", "c_n"):
        err_torch = (want[key].float() - ref32[key]).abs().max().item()
        err_fast = (got[key].float() - ref32[key]).abs().max().item()
        bound = 2 * err_torch + LOW_PRECISION_FLOOR[dtype]
        assert err_fast <= bound, (
            f"{shape.name} {mode} {dtype_name(dtype)}: {key}: fastlstm's error against float32 "
            f"{err_fast:.3g} > 2 x torch's {err_torch:.3g} + {LOW_PRECISION_FLOOR[dtype]}")
    for key, value in got.items():
        if key.startswith("grad") and value is not None:
            assert torch.isfinite(value).all(), f"{shape.name} {mode}: {key} is not finite"
