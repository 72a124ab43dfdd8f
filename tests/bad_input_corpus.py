"""A corpus of bad (and odd but valid) inputs to the modules and to the ops,
each a function returning (fastlstm's call, the same call through torch's
nn.LSTM / nn.LSTMCell, or the reference equations, or None). tests/test_fuzz_bad_input.py runs
them in worker processes (tests/fuzz_worker.py), so that a crash or a hang
is reported as a failure of its case instead of killing pytest.

A case registered with an `error` must raise it (and torch must raise the
same type where `like_torch`), with a message matching `match`, which names
what was expected and what was given. A case registered without one is a
valid input: it must return what torch returns (to float64 round-off, NaN
where torch's is NaN).
Seeded random cases (random_op_args_<seed>) mutate one op argument at a
time: they must either raise RuntimeError naming the argument or return
the reference equations' result."""
import random
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

import fastlstm
from fastlstm.reference import lstm_layer_ref

OP = torch.ops.fastlstm.lstm_layer.default
BACKWARD_OP = torch.ops.fastlstm.lstm_layer_backward.default
F64 = torch.float64


@dataclass
class Expect:
    error: type = None        # None: a valid input, compared with torch's result
    match: str = ""
    like_torch: bool = True   # torch raises the same type (False: torch crashes or differs)


CORPUS = {}


def case(error=None, match="", like_torch=True):
    def register(fn):
        CORPUS[fn.__name__] = (fn, Expect(error, match, like_torch))
        return fn
    return register


def register_table(table, calls, error=RuntimeError):
    """Cases from a table of name: (changes, match): calls(**changes()) gives
    (fastlstm's call, torch's or None)."""
    for name, (changes, match) in table.items():
        make = lambda changes=changes: calls(**changes())  # noqa: E731
        make.source = changes  # the reproducer shows the table's entry
        CORPUS[name] = (make, Expect(error, match))


def both(expected, given):
    return f"({expected}.*{given}|{given}.*{expected})"


def op_args(steps=3, batch=3, input_size=4, hidden=5, proj=0, batch_sizes=None, dtype=F64):
    """lstm_layer's arguments in schema order, reverse and save_workspace last."""
    gen = torch.Generator().manual_seed(0)
    p = proj or hidden
    rows = sum(batch_sizes) if batch_sizes else steps * batch
    batch = batch_sizes[0] if batch_sizes else batch
    rand = lambda *shape: torch.rand(shape, generator=gen, dtype=dtype) - 0.5  # noqa: E731
    return {"input": rand(rows, input_size), "h0": rand(batch, p), "c0": rand(batch, hidden),
            "w_ih": rand(4 * hidden, input_size), "w_hh": rand(4 * hidden, p),
            "bias": rand(4 * hidden), "w_hr": rand(proj, hidden) if proj else None,
            "batch_sizes": torch.tensor(batch_sizes) if batch_sizes else None,
            "reverse": False, "save_workspace": True}


def op_call(**changes):
    args = {**op_args(batch_sizes=changes.pop("batch_sizes_values", None)), **changes}
    return lambda: OP(*args.values())


def reference_call(args):
    """The reference equations on op_args (no workspace)."""
    names = ("input", "h0", "c0", "w_ih", "w_hh", "bias", "w_hr", "batch_sizes", "reverse")
    ref = {k: args[k] for k in names}
    if ref["batch_sizes"] is not None:
        ref["batch_sizes"] = ref["batch_sizes"].tolist()
    return lambda: lstm_layer_ref(**ref)


def backward_call(**changes):
    """lstm_layer_backward on a real forward's workspace, one argument changed."""
    args = op_args(batch_sizes=[3, 2, 2, 1])
    output, h_n, c_n, gates, cells = OP(*args.values())
    full = {"grad_output": torch.ones_like(output), "grad_h_n": torch.ones_like(h_n),
            "grad_c_n": torch.ones_like(c_n), "input": args["input"], "h0": args["h0"],
            "c0": args["c0"], "w_ih": args["w_ih"], "w_hh": args["w_hh"], "w_hr": None,
            "batch_sizes": args["batch_sizes"], "reverse": False, "output": output,
            "gates": gates, "cells": cells}
    full.update(changes)
    return lambda: BACKWARD_OP(*full.values())


# --- the op ------------------------------------------------------------------

def zeros(*shape, dtype=F64, device="cpu"):
    return torch.zeros(shape, dtype=dtype, device=device)


def packed(values, batch_sizes):
    """Arguments packed for batch_sizes `values`, then given `batch_sizes`."""
    return dict(batch_sizes_values=values, batch_sizes=batch_sizes)


# A valid call with some arguments replaced (made at run time), and what the
# RuntimeError says of them.
ONE_CALL = {
    "batch_sizes_increasing": (lambda: packed([3, 2, 2], torch.tensor([3, 2, 3])),
                               "non-increasing.*got 3 at step 2"),
    "batch_sizes_sum_short": (lambda: packed([3, 2, 2], torch.tensor([3, 2, 1])),
                              "sum to the 7 input rows, got 6"),
    "batch_sizes_zero_step": (lambda: packed([3, 3, 1], torch.tensor([3, 3, 0])),
                              "positive and non-increasing.*got 0 at step 2"),
    "batch_sizes_negative": (lambda: packed([3, 3, 1], torch.tensor([3, 3, -1])),
                             "positive and non-increasing.*got -1 at step 2"),
    "batch_sizes_first_below_batch": (lambda: packed([3, 2, 2], torch.tensor([2, 2, 2, 1])),
                                      "batch_sizes\\[0\\] == 3.*got 2"),
    "batch_sizes_empty_with_rows": (lambda: packed([3, 2, 2], zeros(0, dtype=torch.int64)),
                                    "sum to the 7 input rows, got 0"),
    "batch_sizes_int32": (lambda: packed([3, 2, 2], torch.tensor([3, 2, 2], dtype=torch.int32)),
                          "1-D int64 CPU tensor, got 1-D Int"),
    "batch_sizes_float": (lambda: packed([3, 2, 2], torch.tensor([3.0, 2.0, 2.0])),
                          "1-D int64 CPU tensor, got 1-D Float"),
    "batch_sizes_2d": (lambda: packed([3, 2, 2], torch.tensor([[3, 2, 2]])),
                       "1-D int64 CPU tensor, got 2-D"),
    "batch_sizes_on_meta": (lambda: packed([3, 2, 2], torch.tensor([3, 2, 2], device="meta")),
                            "1-D int64 CPU tensor, got one on meta"),
    "w_hr_without_rows": (lambda: dict(w_hr=zeros(0, 5), w_hh=zeros(20, 0), h0=zeros(3, 0)),
                          "w_hr of shape \\[proj_size, hidden_size\\] with proj_size > 0.*"
                          "got \\[0, 5\\]"),
    "w_hr_1d": (lambda: dict(w_hr=zeros(5)),
                "w_hr of shape \\[proj_size, hidden_size\\].*got \\[5\\]"),
    "w_hr_wrong_hidden": (lambda: dict(w_hr=zeros(2, 4), w_hh=zeros(20, 2), h0=zeros(3, 2)),
                          "w_hr of shape \\[2, 5\\], got \\[2, 4\\]"),
    "w_hr_dtype": (lambda: dict(w_hr=zeros(2, 5, dtype=torch.half), w_hh=zeros(20, 2),
                                h0=zeros(3, 2)),
                   "w_hr of dtype Double .*got Half"),
    "w_ih_rows_not_four_gates": (lambda: dict(w_ih=zeros(18, 4)),
                                 "w_ih of shape \\[4\\*hidden_size, input_size\\], got \\[18, 4\\]"),
    "w_ih_input_size": (lambda: dict(w_ih=zeros(20, 3)),
                        "w_ih of shape \\[20, 4\\], got \\[20, 3\\]"),
    "w_ih_1d": (lambda: dict(w_ih=zeros(20)),
                "w_ih of shape \\[4\\*hidden_size, input_size\\], got \\[20\\]"),
    "w_ih_dtype": (lambda: dict(w_ih=zeros(20, 4, dtype=torch.float32)),
                   "w_ih of dtype Double .*got Float"),
    "w_hh_shape": (lambda: dict(w_hh=zeros(20, 4)), "w_hh of shape \\[20, 5\\], got \\[20, 4\\]"),
    "w_hh_on_meta": (lambda: dict(w_hh=zeros(20, 5, device="meta")), both("cpu", "meta")),
    "bias_2d": (lambda: dict(bias=zeros(1, 20)), "bias of shape \\[20\\], got \\[1, 20\\]"),
    "h0_1d": (lambda: dict(h0=zeros(15)), "h0 of shape \\[batch, 5\\], got \\[15\\]"),
    "c0_3d": (lambda: dict(c0=zeros(3, 1, 5)), "c0 of shape \\[3, 5\\], got \\[3, 1, 5\\]"),
    "input_0d": (lambda: dict(input=zeros()), "input of shape \\[rows, input_size\\], got 0-D"),
    "input_bool": (lambda: dict(input=zeros(9, 4, dtype=torch.bool)),
                   "floating-point input, got Bool"),
    "input_complex": (lambda: dict(input=zeros(9, 4, dtype=torch.complex128)),
                      "floating-point input, got ComplexDouble"),
    "rows_not_whole_steps": (lambda: dict(input=zeros(8, 4)),
                             "the 8 input rows to be a whole number of steps of batch 3"),
    "rows_with_empty_batch": (lambda: dict(input=zeros(3, 4), h0=zeros(0, 5), c0=zeros(0, 5)),
                              "the 3 input rows to be a whole number of steps of batch 0"),
}


register_table(ONE_CALL, lambda **changes: (op_call(**changes), None))


@case()
def batch_sizes_sliced_view():
    args = op_args(batch_sizes=[3, 2, 2, 1])
    strided = {**args, "batch_sizes": torch.tensor([3, 9, 2, 9, 2, 9, 1, 9])[::2]}
    return lambda: OP(*strided.values())[:3], reference_call(args)


@case()
def batch_sizes_expanded_view():
    args = op_args(batch_sizes=[3, 3, 3])
    strided = {**args, "batch_sizes": torch.tensor([3]).expand(3)}
    return lambda: OP(*strided.values())[:3], reference_call(args)


@case()
def batch_sizes_view_in_backward():
    contiguous = backward_call()
    strided = backward_call(batch_sizes=torch.tensor([3, 9, 2, 9, 2, 9, 1, 9])[::2])
    return strided, contiguous


@case()
def strided_and_expanded_arguments():
    args = op_args()
    views = {**args, "input": args["input"].t().contiguous().t(),
             "w_ih": torch.ones(1, 4, dtype=F64).expand(20, 4), "h0": args["h0"][:, None, :][:, 0]}
    plain = {**views, "w_ih": views["w_ih"].contiguous()}
    return lambda: OP(*views.values())[:3], reference_call(plain)


@case()
def nan_and_inf_input():
    args = op_args()
    args["input"][1, 2], args["input"][4, 0] = float("nan"), float("inf")
    return lambda: OP(*args.values())[:3], reference_call(args)


@case()
def zero_steps():
    args = op_args(steps=0)
    return lambda: OP(*args.values())[:3], reference_call(args)


@case()
def zero_hidden_units():
    args = {**op_args(), "w_ih": torch.zeros(0, 4, dtype=F64), "w_hh": torch.zeros(0, 0, dtype=F64),
            "bias": torch.zeros(0, dtype=F64), "h0": torch.zeros(3, 0, dtype=F64),
            "c0": torch.zeros(3, 0, dtype=F64)}
    return lambda: OP(*args.values())[:3], reference_call(args)


@case()
def zero_input_features():
    args = {**op_args(), "input": torch.zeros(9, 0, dtype=F64), "w_ih": torch.zeros(20, 0, dtype=F64)}
    return lambda: OP(*args.values())[:3], reference_call(args)


# --- the backward op -----------------------------------------------------------

# lstm_layer_backward on a real forward's workspace with arguments replaced.
BACKWARD_ONE_CALL = {
    "backward_grad_output_shape": (lambda: dict(grad_output=zeros(8, 4)),
                                   "grad_output of shape \\[8, 5\\], got \\[8, 4\\]"),
    "backward_grad_h_n_dtype": (lambda: dict(grad_h_n=zeros(3, 5, dtype=torch.float32)),
                                "grad_h_n of dtype Double .*got Float"),
    "backward_gates_dtype": (lambda: dict(gates=zeros(8, 20, dtype=torch.float32)),
                             "gates of dtype Double, got Float"),
    "backward_empty_workspace": (lambda: dict(cells=zeros(0, 5)),
                                 "cells of shape \\[8, 5\\], got \\[0, 5\\]"),
    "backward_output_shape": (lambda: dict(output=zeros(8, 6)),
                              "output of shape \\[8, 5\\], got \\[8, 6\\]"),
    "backward_output_dtype": (lambda: dict(output=zeros(8, 5, dtype=torch.float32)),
                              "grad_output of dtype Float .*got Double"),
    "backward_batch_sizes_increasing": (lambda: dict(batch_sizes=torch.tensor([3, 2, 3])),
                                        "non-increasing.*got 3 at step 2"),
    "backward_gates_on_meta": (lambda: dict(gates=zeros(8, 20, device="meta")),
                               "expected every tensor on cpu.*got one on meta"),
}
register_table(BACKWARD_ONE_CALL, lambda **changes: (backward_call(**changes), None))


@case(RuntimeError, "expected scalar type Float but found Double")
def backward_workspace_of_another_dtype_than_input():
    args = op_args()
    output, h_n, c_n, gates, cells = OP(*args.values())
    call = backward_call(input=args["input"].float(), h0=args["h0"].float(),
                         c0=args["c0"].float(), w_ih=args["w_ih"].float(),
                         w_hh=args["w_hh"].float(), batch_sizes=None, output=output,
                         grad_output=output, grad_h_n=h_n, grad_c_n=c_n, gates=gates, cells=cells)
    return call, None


# --- the modules ----------------------------------------------------------------

# (nn.LSTM's constructor checks: tests/test_bad_input.py.)

@case(RuntimeError, "Trying to create tensor with negative dimension")
def cell_input_size_negative():
    return lambda: fastlstm.LSTMCell(-1, 5), lambda: nn.LSTMCell(-1, 5)


def module_pair(cls=nn.LSTM, **config):
    torch.manual_seed(0)
    ref = cls(**{"input_size": 3, "hidden_size": 4, **config}, dtype=F64)
    fast = getattr(fastlstm, cls.__name__)(**{"input_size": 3, "hidden_size": 4, **config},
                                           dtype=F64)
    fast.load_state_dict(ref.state_dict())
    return fast, ref


def packed_outputs(module, packed, hx=None):
    output, (h_n, c_n) = module(packed, hx)
    return output.data, h_n, c_n


@case()
def packed_batch_sizes_sliced_view():
    fast, ref = module_pair(bidirectional=True)
    data = torch.randn(6, 3, dtype=F64)
    strided = torch.tensor([2, 9, 2, 9, 1, 9, 1, 9])[::2]
    return (lambda: packed_outputs(fast, PackedSequence(data, strided)),
            lambda: packed_outputs(ref, PackedSequence(data, strided.contiguous())))


@case()
def packed_batch_sizes_expanded_view():
    fast, ref = module_pair(num_layers=2, proj_size=2)
    data = torch.randn(6, 3, dtype=F64)
    return (lambda: packed_outputs(fast, PackedSequence(data, torch.tensor([2]).expand(3))),
            lambda: packed_outputs(ref, PackedSequence(data, torch.tensor([2, 2, 2]))))


@case(RuntimeError, "non-increasing.*got 3 at step 1|size of tensor a \\(2\\) must match")
def packed_batch_sizes_increasing():
    fast, ref = module_pair()
    packed = PackedSequence(torch.randn(6, 3, dtype=F64), torch.tensor([2, 3, 1]))
    return lambda: fast(packed), lambda: ref(packed)


@case(RuntimeError, "1-D int64 CPU tensor, got 1-D Int|expected scalar type Long but found Int")
def packed_batch_sizes_int32():
    fast, ref = module_pair()
    packed = PackedSequence(torch.randn(6, 3, dtype=F64), torch.tensor([2, 2, 2], dtype=torch.int32))
    return lambda: fast(packed), lambda: ref(packed)


# nn.LSTM returns an output here, from 6 of the 7 rows.
@case(RuntimeError, "sum to the 7 input rows, got 6", like_torch=False)
def packed_rows_not_batch_sizes():
    fast, ref = module_pair()
    packed = PackedSequence(torch.randn(7, 3, dtype=F64), torch.tensor([3, 3]))
    return lambda: fast(packed), lambda: ref(packed)


@case(ValueError, both("torch.float64", "torch.complex128"))
def complex_input_to_real_lstm():
    fast, ref = module_pair()
    x = torch.randn(4, 2, 3, dtype=torch.complex128)
    return lambda: fast(x), lambda: ref(x)


@case()
def complex_lstm():
    fast, ref = module_pair(num_layers=2)
    fast, ref = fast.to(torch.complex128), ref.to(torch.complex128)
    x = torch.randn(4, 2, 3, dtype=torch.complex128)
    return lambda: fast(x), lambda: ref(x)


@case(RuntimeError, "Input batch size 2 doesn't match hidden1 batch size 3")
def cell_cx_batch():
    fast, ref = module_pair(nn.LSTMCell)
    x, hx = torch.randn(2, 3, dtype=F64), (torch.zeros(2, 4, dtype=F64), torch.zeros(3, 4, dtype=F64))
    return lambda: fast(x, hx), lambda: ref(x, hx)


@case()
def cell_without_hidden_units():
    torch.manual_seed(0)
    ref, fast = nn.LSTMCell(3, 0, dtype=F64), fastlstm.LSTMCell(3, 0, dtype=F64)
    x = torch.randn(2, 3, dtype=F64)
    return lambda: fast(x), lambda: ref(x)


@case()
def cell_without_input_features():
    fast, ref = module_pair(nn.LSTMCell, input_size=0)
    x = torch.randn(2, 0, dtype=F64)
    return lambda: fast(x), lambda: ref(x)


@case()
def saturated_float32_gradients():
    torch.manual_seed(0)
    ref = nn.LSTM(2, 3)
    fast = fastlstm.LSTM.from_torch(ref)

    def grads(module):
        x = torch.tensor([[[3.4e38, 1.0]], [[0.5, float("-inf")]]], requires_grad=True)
        output, (h_n, c_n) = module(x)
        return torch.autograd.grad(output.sum() + c_n.sum(), [x, *module.parameters()])
    return lambda: grads(fast), lambda: grads(ref)


# --- seeded random mutations of one op argument ------------------------------------

RANDOM_SEEDS = range(500)
ARGUMENTS = ("input", "h0", "c0", "w_ih", "w_hh", "bias", "w_hr", "batch_sizes")


def random_tensor(rng, name):
    """A random replacement for an op argument: any rank 0-3, sizes 0-5, an
    assortment of dtypes, sometimes a non-contiguous view."""
    if name == "batch_sizes" and rng.random() < 0.7:
        values = [rng.randint(-1, 4) for _ in range(rng.randint(0, 5))]
        t = torch.tensor(values, dtype=rng.choice([torch.int64, torch.int64, torch.int32]))
    else:
        shape = [rng.randint(0, 5) for _ in range(rng.randint(0, 3))]
        dtype = rng.choice([F64, F64, F64, torch.float32, torch.int64, torch.bool])
        t = (torch.rand(shape, dtype=F64) - 0.5).to(dtype)
    if t.dim() and rng.random() < 0.3:
        t = torch.stack([t, t], dim=-1)[..., 0]  # same values, strided
    return t


def random_op_args(seed):
    """Valid op arguments (random sizes, packed or not, projected or not), one
    of them then replaced by a random tensor or None."""
    rng = random.Random(seed)
    hidden = rng.randint(1, 4)
    proj = rng.choice([0, 0, rng.randint(1, hidden)])
    lengths = sorted((rng.randint(1, 4) for _ in range(rng.randint(1, 3))), reverse=True)
    batch_sizes = [sum(n > t for n in lengths) for t in range(lengths[0])]
    args = op_args(input_size=rng.randint(1, 3), hidden=hidden, proj=proj,
                   batch_sizes=batch_sizes if rng.random() < 0.5 else None,
                   steps=rng.randint(1, 3), batch=rng.randint(1, 3))
    args["reverse"] = rng.random() < 0.5
    name = rng.choice(ARGUMENTS)
    # None only where the schema has an optional tensor: for the others the
    # dispatcher fails before any kernel ("tensor does not have a device").
    optional = name in ("bias", "w_hr", "batch_sizes")
    args[name] = None if optional and rng.random() < 0.3 else random_tensor(rng, name)
    return args, name


def random_op_case(seed):
    args, _ = random_op_args(seed)
    return lambda: OP(*args.values())[:3], reference_call(args)


for _seed in RANDOM_SEEDS:
    CORPUS[f"random_op_args_{_seed}"] = (lambda seed=_seed: random_op_case(seed),
                                         Expect(RuntimeError, "", like_torch=False))
