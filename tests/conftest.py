"""Shared helpers: build an (nn.LSTM, fastlstm.LSTM) pair with one state_dict,
run a module with leaf inputs and a fixed upstream gradient, and compare
everything that comes out (outputs, final states and every gradient)."""
import os
from dataclasses import dataclass

# Spinning OpenMP workers make every small GEMM ~100x slower whenever the two
# cores are busy with anything else; sleeping workers give the same results.
# Read once when torch loads, so it has to be set before the first import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastlstm

FP32_TOL = {"atol": 1e-5, "rtol": 1e-4}
FP64_TOL = {"atol": 1e-10, "rtol": 1e-9}
# The storage types of the CPU engine's SIMD paths: each such test runs in both.
ENGINE_DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64],
                                        ids=["float32", "float64"])


def pytest_addoption(parser):
    parser.addoption(
        "--emulate", choices=["forward", "reverse", "random"], default=None,
        help="run the ops on CPU tensors through the CUDA step kernels under the SIMT emulator "
             "(fastlstm.backend('emulated')), threads scheduled in this order")
    parser.addoption("--emulate-seed", type=int, default=1, help="seed of --emulate=random")
    parser.addoption("--emulate-kernel", default="auto", choices=fastlstm._backend.KERNELS,
                     help="kernel variant the glue uses under --emulate (default: its own choice)")


@pytest.fixture(autouse=True, scope="session")
def _backend_for_session(request):
    order = request.config.getoption("--emulate")
    if order is None:
        yield
        return
    # Float32 is compared with nn.LSTM at float32 tolerances: no TF32 (which torch allows
    # for cuDNN's RNNs by default, and the persistent Tensor Core kernel follows).
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    with fastlstm.backend("emulated", kernel=request.config.getoption("--emulate-kernel"),
                          order=order, seed=request.config.getoption("--emulate-seed")):
        yield
    torch.backends.cudnn.allow_tf32 = tf32


def pytest_configure(config):
    # nn.LSTM warns on every CPU call with proj_size > 0 (no oneDNN path); harmless here.
    config.addinivalue_line(
        "filterwarnings", "ignore:LSTM with projections is not supported with oneDNN:UserWarning")


@pytest.fixture(autouse=True)
def _restore_num_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tol_for(dtype):
    return FP64_TOL if dtype == torch.float64 else FP32_TOL


def _same_weights(ref_cls, fast_cls, seed, dtype, config):
    torch.manual_seed(seed)
    ref = ref_cls(**config, dtype=dtype)
    fast = fast_cls(**config, dtype=dtype)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def make_pair(seed=0, dtype=torch.float32, **config):
    """nn.LSTM and fastlstm.LSTM with the same configuration and weights."""
    return _same_weights(nn.LSTM, fastlstm.LSTM, seed, dtype, config)


def make_cell_pair(seed=0, dtype=torch.float32, **config):
    """nn.LSTMCell and fastlstm.LSTMCell with the same configuration and weights."""
    return _same_weights(nn.LSTMCell, fastlstm.LSTMCell, seed, dtype, config)


@dataclass(frozen=True)
class Case:
    """One input layout for an LSTM: batch=None means unbatched 2-D input;
    lengths (one per sequence) means a PackedSequence built from padded input."""
    config: dict
    steps: int = 4
    batch: int = 3
    lengths: tuple = None
    enforce_sorted: bool = True
    with_hx: bool = True

    @property
    def packed(self):
        return self.lengths is not None

    def __str__(self):
        cfg = ",".join(f"{k}={v}" for k, v in self.config.items())
        parts = [cfg, f"T={self.steps}", f"B={self.batch}"]
        if self.packed:
            parts.append(f"lengths={list(self.lengths)}" + ("" if self.enforce_sorted else ",unsorted"))
        if not self.with_hx:
            parts.append("hx=None")
        return " ".join(parts)


def state_sizes(config):
    dirs = 2 if config.get("bidirectional") else 1
    layers = config.get("num_layers", 1) * dirs
    hidden = config["hidden_size"]
    return layers, config.get("proj_size", 0) or hidden, hidden


def make_leaves(case, dtype=torch.float32, seed=1, device="cpu", drawn=None):
    """Input and (optionally) hx as fresh leaf tensors, laid out as nn.LSTM expects;
    their values drawn in `drawn` (default: dtype), then cast to dtype."""
    gen = torch.Generator().manual_seed(seed)
    drawn = drawn or dtype
    cfg = case.config
    layers, proj, hidden = state_sizes(cfg)
    if case.batch is None:
        x_shape, h_shape, c_shape = (case.steps, cfg["input_size"]), (layers, proj), (layers, hidden)
    else:
        x_shape = (case.steps, case.batch, cfg["input_size"])
        if cfg.get("batch_first"):
            x_shape = (case.batch, case.steps, cfg["input_size"])
        h_shape, c_shape = (layers, case.batch, proj), (layers, case.batch, hidden)
    x = torch.randn(x_shape, generator=gen, dtype=drawn).to(device, dtype).requires_grad_()
    hx = None
    if case.with_hx:
        hx = tuple(torch.randn(s, generator=gen, dtype=drawn).to(device, dtype).requires_grad_()
                   for s in (h_shape, c_shape))
    return x, hx


def module_input(case, x):
    if not case.packed:
        return x
    return pack_padded_sequence(x, torch.tensor(case.lengths),
                                batch_first=bool(case.config.get("batch_first")),
                                enforce_sorted=case.enforce_sorted)


def run_lstm(forward, params, case, dtype=torch.float32, device="cpu", drawn=None):
    """Runs forward(input, hx) -> (output, (h_n, c_n)) on leaves made for case, backpropagates a
    random upstream gradient through output, h_n and c_n, and returns every result by name.

    The same seeds are used for every module, so results of two modules are comparable (and
    across dtypes where the values are drawn in one dtype)."""
    x, hx = make_leaves(case, dtype, device=device, drawn=drawn)
    output, (h_n, c_n) = forward(module_input(case, x), hx)
    out_data = output.data if isinstance(output, PackedSequence) else output
    gen = torch.Generator().manual_seed(2)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=drawn or dtype)
                .to(device, dtype)).sum()
               for t in (out_data, h_n, c_n))
    named = dict(params)
    grads = torch.autograd.grad(loss, [x] + list(hx or ()) + list(named.values()), allow_unused=True)
    results = {"output": out_data, "h_n": h_n, "c_n": c_n, "grad_input": grads[0]}
    if hx is not None:
        results.update(grad_h0=grads[1], grad_c0=grads[2])
    for name, grad in zip(named, grads[1 + len(hx or ()):]):
        results["grad_" + name] = grad
    if isinstance(output, PackedSequence):
        results["batch_sizes"] = output.batch_sizes
        for key in ("sorted_indices", "unsorted_indices"):
            if getattr(output, key) is not None:
                results[key] = getattr(output, key)
    return results


def run_module(module, case, dtype=torch.float32, device="cpu", drawn=None):
    return run_lstm(module, module.named_parameters(), case, dtype, device, drawn)


def fast_results_with_threads(case, threads, dtype=torch.float32):
    """fastlstm's results for case (its LSTM built afresh) on `threads` torch threads."""
    torch.set_num_threads(threads)
    _, fast = make_pair(dtype=dtype, **case.config)
    return run_module(fast, case, dtype)


def run_reference(module, case, dtype=torch.float32, device="cpu"):
    """fastlstm.reference.lstm_ref on module's parameters."""
    return run_lstm(lambda inp, hx: fastlstm.reference.lstm_ref(module, inp, hx),
                    module.named_parameters(), case, dtype, device)


def assert_all_close(actual, expected, **tol):
    """assert_close item by item over two sequences of tensors; bitwise without tol."""
    actual, expected = list(actual), list(expected)
    assert len(actual) == len(expected)
    tol = tol or {"rtol": 0, "atol": 0}
    for i, (a, e) in enumerate(zip(actual, expected)):
        torch.testing.assert_close(a, e, **tol, msg=lambda m, i=i: f"item {i}: {m}")


def assert_results_close(actual, expected, **tol):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] is not None, f"{key} is None"
        assert value is not None, f"expected {key} is None"
        torch.testing.assert_close(actual[key], value, **tol, msg=lambda m, key=key: f"{key}: {m}")


def assert_results_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), f"{key} differs bitwise"


def layer_args(steps=4, batch=3, input_size=3, hidden=5, proj=0, bias=True, batch_sizes=None,
               dtype=torch.float64, requires_grad=False, seed=0):
    """Arguments of the lstm_layer op, by name and in schema order (reverse excluded).

    With batch_sizes (a list) the rows are packed: N = sum(batch_sizes), B = batch_sizes[0]."""
    gen = torch.Generator().manual_seed(seed)
    p = proj or hidden
    if batch_sizes is not None:
        rows, batch = sum(batch_sizes), batch_sizes[0]
        batch_sizes = torch.tensor(batch_sizes, dtype=torch.int64)
    else:
        rows = steps * batch

    def rand(*shape, scale=1.0):
        t = (torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * scale
        return t.requires_grad_(requires_grad)

    bound = hidden ** -0.5
    return {
        "input": rand(rows, input_size),
        "h0": rand(batch, p),
        "c0": rand(batch, hidden),
        "w_ih": rand(4 * hidden, input_size, scale=bound),
        "w_hh": rand(4 * hidden, p, scale=bound),
        "bias": rand(4 * hidden, scale=bound) if bias else None,
        "w_hr": rand(proj, hidden, scale=bound) if proj else None,
        "batch_sizes": batch_sizes,
    }


def on_device(args, device):
    """layer_args on device: the floating tensors moved there (leaves, requires_grad kept);
    batch_sizes stays on the CPU, where the op wants it and a PackedSequence keeps it."""
    return {k: v.detach().to(device).requires_grad_(v.requires_grad)
            if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in args.items()}


def layer_results(fn, args, reverse):
    """fn(**args, reverse=reverse) -> (output, h_n, c_n) on leaf copies of args, then the
    gradients of a random weighting of those outputs with respect to every floating argument,
    all in one list.

    The weights are drawn in float64 on the CPU and then rounded to each output's dtype and
    moved to its device: drawn in each dtype they would differ between dtypes (CPU randn takes
    another path for float32), and gradients of two precisions could not be compared."""
    leaves = {k: v.detach().requires_grad_() if isinstance(v, torch.Tensor) and
              v.is_floating_point() else v for k, v in args.items()}
    outputs = fn(**leaves, reverse=reverse)
    gen = torch.Generator().manual_seed(5)
    weights = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.device, t.dtype)
               for t in outputs]
    loss = sum((t * w).sum() for t, w in zip(outputs, weights))
    grads = torch.autograd.grad(loss, [v for v in leaves.values() if v is not None and
                                       v.is_floating_point()])
    return [t.detach() for t in outputs] + list(grads)


def torch_mm_is_thread_invariant(dtype):
    """Whether torch's own CPU GEMM (MKL/oneDNN) gives the same bits at 1 and 2 threads
    for a gate-gradient product like the emulated glue's; on some CPUs (AVX-512 Xeons)
    it splits the sum differently by thread count."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 1088, generator=gen, dtype=dtype)
    b = torch.randn(1088, 16, generator=gen, dtype=dtype)
    products = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        products.append(torch.mm(a, b))
    return torch.equal(*products)


def thread_counts_agree_on_this_backend(request, dtype):
    """Whether results may be asked to agree bitwise across thread counts:
    always on fastlstm's CPU engine; under --emulate, where the glue of the
    CUDA kernels does its GEMMs through torch.mm, only where torch.mm does."""
    return not request.config.getoption("--emulate") or torch_mm_is_thread_invariant(dtype)
