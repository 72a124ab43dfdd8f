"""The fastlstm ops on their own: results against fastlstm.reference,
gradcheck of the autograd formula, and torch.library.opcheck of the
registrations (schema, fake kernels, autograd, AOT dispatch)."""
import pytest
import torch

import fastlstm
from fastlstm.reference import lstm_layer_ref
from conftest import FP64_TOL, assert_all_close, layer_args, tol_for

OP = torch.ops.fastlstm.lstm_layer.default
BACKWARD_OP = torch.ops.fastlstm.lstm_layer_backward.default

# (layer_args kwargs, reverse)
CONFIGS = {
    "plain": (dict(), False),
    "projection": (dict(hidden=5, proj=2), False),
    "no_bias": (dict(bias=False), False),
    "packed": (dict(batch_sizes=[3, 3, 2, 1]), False),
    "reverse": (dict(), True),
    "packed_reverse_projection": (dict(batch_sizes=[4, 2, 2, 1], proj=3, hidden=4), True),
    "packed_reverse_no_bias": (dict(batch_sizes=[2, 1, 1], bias=False), True),
    "single_step": (dict(steps=1, batch=2), False),
    "single_row": (dict(steps=3, batch=1, proj=1, hidden=2), True),
}


def call_op(args, reverse):
    return fastlstm.lstm_layer(*args.values(), reverse=reverse)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_op_matches_reference(name, dtype):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(dtype=dtype, **kwargs)
    actual = call_op(args, reverse)
    expected = lstm_layer_ref(**args, reverse=reverse)
    assert all(t.dtype == dtype for t in actual)
    assert_all_close(actual, expected, **tol_for(dtype))


@pytest.mark.parametrize("name", CONFIGS)
def test_op_gradients_match_reference(name):
    kwargs, reverse = CONFIGS[name]
    grads = []
    for fn in (fastlstm.lstm_layer, lstm_layer_ref):
        args = layer_args(requires_grad=True, **kwargs)
        outputs = fn(**args, reverse=reverse)
        gen = torch.Generator().manual_seed(5)
        loss = sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in outputs)
        leaves = [t for t in args.values() if t is not None and t.requires_grad]
        grads.append(torch.autograd.grad(loss, leaves))
    fast_grads, reference_grads = grads
    assert_all_close(fast_grads, reference_grads, **FP64_TOL)


@pytest.mark.parametrize("name", ["plain", "projection", "no_bias", "packed", "reverse",
                                  "packed_reverse_projection"])
def test_gradcheck_op(name):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(requires_grad=True, **kwargs)
    assert torch.autograd.gradcheck(lambda *a: call_op(dict(zip(args, a)), reverse),
                                    tuple(args.values()))


def test_workspace_holds_activated_gates_and_cells():
    args = layer_args(steps=3, batch=2)
    output, h_n, c_n, gates, cells = OP(*args.values(), False, True)
    assert gates.shape == (6, 20) and cells.shape == (6, 5)
    # Activated gates: i, f, o are sigmoids and g is a tanh, so all lie in (-1, 1).
    assert bool((gates.abs() < 1).all())
    assert bool((gates[:, :10] > 0).all()) and bool((gates[:, 15:] > 0).all())
    torch.testing.assert_close(cells[-2:], c_n, **FP64_TOL)
    torch.testing.assert_close(output[-2:], h_n, **FP64_TOL)


def test_op_accepts_non_contiguous_arguments():
    args = layer_args(proj=2, batch_sizes=[3, 2, 2], requires_grad=True)
    strided = {}
    for key, t in args.items():
        if t is None or key == "batch_sizes":
            strided[key] = t
        elif t.dim() == 2:
            strided[key] = t.detach().t().contiguous().t().requires_grad_()
        else:
            strided[key] = torch.stack([t.detach()] * 2, dim=1)[:, 0].requires_grad_()
    assert not strided["input"].is_contiguous() and not strided["bias"].is_contiguous()
    results = []
    for op_args in (strided, args):
        outputs = call_op(op_args, True)
        sum((t * (i + 1)).sum() for i, t in enumerate(outputs)).backward()
        results.append([*outputs] + [t.grad for t in op_args.values() if t is not None and t.requires_grad])
    strided_results, contiguous_results = results
    assert_all_close(strided_results, contiguous_results)


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
def test_op_with_no_rows_returns_initial_state(packed):
    args = layer_args(steps=0, batch=3)
    if packed:
        args["batch_sizes"] = torch.zeros(0, dtype=torch.int64)
    output, h_n, c_n = call_op(args, False)
    assert output.shape == (0, 5)
    assert torch.equal(h_n, args["h0"]) and torch.equal(c_n, args["c0"])


def test_op_with_empty_batch():
    args = layer_args(steps=4, batch=0, requires_grad=True)
    output, h_n, c_n = call_op(args, False)
    assert output.shape == (0, 5) and h_n.shape == (0, 5) and c_n.shape == (0, 5)
    (output.sum() + h_n.sum() + c_n.sum()).backward()
    assert torch.equal(args["w_ih"].grad, torch.zeros_like(args["w_ih"]))


OPCHECK_CONFIGS = ["plain", "projection", "no_bias", "packed", "reverse",
                   "packed_reverse_projection"]


@pytest.mark.parametrize("requires_grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("name", OPCHECK_CONFIGS)
def test_opcheck_forward(name, requires_grad):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(dtype=torch.float32, requires_grad=requires_grad, **kwargs)
    torch.library.opcheck(OP, (*args.values(), reverse, True))


@pytest.mark.parametrize("name", OPCHECK_CONFIGS)
def test_inference_forward_matches_training_forward(name):
    """Without save_workspace the input projection runs a few steps at a time
    into a reused buffer; results must not change, and no workspace is kept."""
    kwargs, reverse = CONFIGS[name]
    args = layer_args(dtype=torch.float32, **kwargs)
    torch.library.opcheck(OP, (*args.values(), reverse, False))
    *saved, gates, cells = OP(*args.values(), reverse, True)
    *unsaved, no_gates, no_cells = OP(*args.values(), reverse, False)
    for a, b in zip(saved, unsaved):
        assert torch.equal(a, b)
    assert no_gates.shape[0] == 0 and no_cells.shape[0] == 0


def test_inference_forward_in_several_chunks_matches_training_forward():
    """Long enough that inference projects the input in several chunks."""
    args = layer_args(steps=300, batch=3, dtype=torch.float32)
    for reverse in (False, True):
        *saved, _, _ = OP(*args.values(), reverse, True)
        *unsaved, _, _ = OP(*args.values(), reverse, False)
        for a, b in zip(saved, unsaved):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", OPCHECK_CONFIGS)
def test_opcheck_backward(name):
    kwargs, reverse = CONFIGS[name]
    args = layer_args(dtype=torch.float32, **kwargs)
    output, h_n, c_n, gates, cells = OP(*args.values(), reverse, True)
    gen = torch.Generator().manual_seed(7)
    grad_output, grad_h_n, grad_c_n = (torch.randn(t.shape, generator=gen) for t in (output, h_n, c_n))
    backward_args = (grad_output, grad_h_n, grad_c_n, args["input"], args["h0"], args["c0"],
                     args["w_ih"], args["w_hh"], args["w_hr"], args["batch_sizes"], reverse,
                     output, gates, cells)
    torch.library.opcheck(BACKWARD_OP, backward_args)
    grads = BACKWARD_OP(*backward_args)
    expected_shapes = [args[k].shape for k in ("input", "h0", "c0", "w_ih", "w_hh")]
    expected_shapes.append(args["w_ih"].shape[:1])
    expected_shapes.append(args["w_hr"].shape if args["w_hr"] is not None else (0,))
    assert [tuple(g.shape) for g in grads] == [tuple(s) for s in expected_shapes]


def test_op_runs_on_fake_tensors_with_right_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    args = layer_args(proj=2, batch_sizes=[3, 2, 1], dtype=torch.float32)
    with FakeTensorMode() as mode:
        fake = {k: mode.from_tensor(v) if v is not None else None for k, v in args.items()}
        shapes = [tuple(t.shape) for t in OP(*fake.values(), False, True)]
    assert shapes == [(6, 2), (3, 2), (3, 5), (6, 20), (6, 5)]
