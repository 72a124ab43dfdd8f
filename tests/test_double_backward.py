"""Second-order gradients (create_graph=True) through the ops and the modules:
gradgradcheck in float64 on the op, and gradients of a gradient equal to
nn.LSTM's / nn.LSTMCell's (same weights) to 1e-9 in float64."""
import pytest
import torch

from torch.nn.utils.rnn import pack_padded_sequence

import fastlstm
from conftest import Case, layer_args, make_cell_pair, make_leaves, make_pair, module_input

DOUBLE_TOL = {"atol": 1e-9, "rtol": 1e-7}

OP_CASES = {
    "plain": dict(),
    "reverse": dict(reverse=True),
    "no_bias": dict(bias=False),
    "packed": dict(batch_sizes=[3, 2, 2, 1]),
    "packed_reverse_proj": dict(batch_sizes=[3, 3, 1], proj=2, reverse=True),
    "proj": dict(proj=2),
    "single_step": dict(steps=1),
}


@pytest.mark.parametrize("name", OP_CASES)
def test_op_gradgradcheck(name):
    config = dict(OP_CASES[name])
    reverse = config.pop("reverse", False)
    args = layer_args(**{"steps": 3, "batch": 3, "input_size": 2, "hidden": 3, **config},
                      requires_grad=True)
    names = [k for k, v in args.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]

    def layer(*tensors):
        return fastlstm.lstm_layer(**{**args, **dict(zip(names, tensors))}, reverse=reverse)

    inputs = tuple(args[k] for k in names)
    assert torch.autograd.gradcheck(layer, inputs)
    assert torch.autograd.gradgradcheck(layer, inputs)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_module_gradgradcheck(packed):
    """gradgradcheck through fastlstm.LSTM (2 layers, bidirectional, projected)
    with respect to the input, hx and every parameter."""
    torch.manual_seed(0)
    module = fastlstm.LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2,
                           dtype=torch.float64)
    names = [name for name, _ in module.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])

    def run(x, h0, c0, *params):
        inp = pack_padded_sequence(x, lengths) if packed else x
        output, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, params)),
                                                        (inp, (h0, c0)))
        return getattr(output, "data", output), h_n, c_n

    inputs = (x, h0, c0, *(p.detach().requires_grad_() for p in module.parameters()))
    assert torch.autograd.gradgradcheck(run, inputs)


def test_cell_gradgradcheck():
    torch.manual_seed(0)
    cell = fastlstm.LSTMCell(2, 3, dtype=torch.float64)
    names = [name for name, _ in cell.named_parameters()]
    x, h, c = (torch.randn(2, n, dtype=torch.float64, requires_grad=True) for n in (2, 3, 3))

    def run(x, h, c, *params):
        return torch.func.functional_call(cell, dict(zip(names, params)), (x, (h, c)))

    inputs = (x, h, c, *(p.detach().requires_grad_() for p in cell.parameters()))
    assert torch.autograd.gradgradcheck(run, inputs)


MODULE_CASES = [
    Case(dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)),
    Case(dict(input_size=3, hidden_size=4, proj_size=2, batch_first=True)),
    Case(dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, proj_size=3),
         lengths=(4, 2, 3), enforce_sorted=False),
    Case(dict(input_size=3, hidden_size=4, bias=False), lengths=(4, 4, 1), with_hx=False),
    Case(dict(input_size=3, hidden_size=4, num_layers=2), batch=None),
]


def grad_of_grad(module, case, leaves=None):
    """The gradient of a penalty on first-order gradients (as WGAN-GP takes
    one), with respect to the input, hx and every parameter."""
    x, hx = leaves or make_leaves(case, torch.float64)
    params = list(module.parameters())
    output, (h_n, c_n) = module(module_input(case, x), hx)
    output = getattr(output, "data", output)
    gen = torch.Generator().manual_seed(3)
    # Weights drawn in float64 whatever the dtype, so that dtypes compare.
    weight = lambda t: torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype)  # noqa: E731
    loss = sum((t * weight(t)).sum() for t in (output, h_n, c_n))
    wrt = [x, *(hx or ()), *params]
    grads = torch.autograd.grad(loss, wrt, create_graph=True)
    penalty = sum((g * weight(g)).sum() + g.pow(2).sum() for g in grads)
    return list(grads) + list(torch.autograd.grad(penalty, wrt))


@pytest.mark.parametrize("case", MODULE_CASES, ids=str)
def test_lstm_double_backward_matches_torch(case):
    ref, fast = make_pair(dtype=torch.float64, **case.config)
    expected, actual = grad_of_grad(ref, case), grad_of_grad(fast, case)
    for i, (a, e) in enumerate(zip(actual, expected)):
        torch.testing.assert_close(a, e, **DOUBLE_TOL, msg=lambda m, i=i: f"item {i}: {m}")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_double_backward_matches_torch(bias, batched):
    ref, fast = make_cell_pair(dtype=torch.float64, input_size=3, hidden_size=4, bias=bias)
    results = []
    for module in (ref, fast):
        gen = torch.Generator().manual_seed(1)
        shape = (2,) if batched else ()
        x, h, c = (torch.randn(*shape, n, generator=gen, dtype=torch.float64).requires_grad_()
                   for n in (3, 4, 4))
        h1, c1 = module(x, (h, c))
        wrt = [x, h, c, *module.parameters()]
        grads = torch.autograd.grad((h1 * h1).sum() + c1.sum(), wrt, create_graph=True)
        results.append(list(grads) + list(torch.autograd.grad(sum(g.pow(2).sum() for g in grads),
                                                              wrt)))
    for a, e in zip(results[1], results[0]):
        torch.testing.assert_close(a, e, **DOUBLE_TOL)


def test_double_backward_on_the_emulated_kernels():
    case = Case(dict(input_size=3, hidden_size=4, bidirectional=True), lengths=(4, 3, 1))
    ref, fast = make_pair(dtype=torch.float64, **case.config)
    expected = grad_of_grad(ref, case)
    with fastlstm.backend("emulated", order="random", seed=3):
        actual = grad_of_grad(fast, case)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, **DOUBLE_TOL)


def test_first_order_gradients_under_create_graph_equal_the_fused_ones():
    case = MODULE_CASES[2]
    _, fast = make_pair(dtype=torch.float64, **case.config)
    fused, differentiable = [], []
    for create_graph, into in ((False, fused), (True, differentiable)):
        x, hx = make_leaves(case, torch.float64)
        output, (h_n, c_n) = fast(module_input(case, x), hx)
        loss = output.data.sum() + h_n.pow(2).sum() + c_n.sum()
        into += torch.autograd.grad(loss, [x, *hx, *fast.parameters()], create_graph=create_graph)
    for a, e in zip(differentiable, fused):
        torch.testing.assert_close(a, e, atol=1e-12, rtol=1e-10)


def test_float32_hessian_vector_product_is_close_to_torch():
    case = Case(dict(input_size=3, hidden_size=5, num_layers=2))
    ref, fast = make_pair(**case.config)
    results = []
    for module in (ref, fast):
        x, hx = make_leaves(case)
        output, _ = module(x, hx)
        params = list(module.parameters())
        grads = torch.autograd.grad(output.pow(2).sum(), params, create_graph=True)
        vector = [torch.ones_like(g) for g in grads]
        results.append(torch.autograd.grad(grads, params, vector))
    for a, e in zip(results[1], results[0]):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_double_backward_is_close_to_float32(dtype):
    """Half and bfloat16 layers recompute in float32, as their backends compute."""
    case = Case(dict(input_size=3, hidden_size=4, proj_size=2), lengths=(4, 3, 1))
    _, fast = make_pair(**case.config)
    low = fastlstm.LSTM.from_torch(fast.to_torch()).to(dtype)
    leaves = make_leaves(case, torch.float32)
    expected = grad_of_grad(fast, case, leaves)
    actual = grad_of_grad(low, case, [leaves[0].detach().to(dtype).requires_grad_(),
                                      [t.detach().to(dtype).requires_grad_() for t in leaves[1]]])
    for a, e in zip(actual, expected):
        assert a.dtype == dtype
        torch.testing.assert_close(a.float(), e, atol=0.1, rtol=0.05)


def test_backward_op_called_directly_refuses_to_be_differentiated():
    args = layer_args(requires_grad=True)
    output, h_n, c_n, gates, cells = torch.ops.fastlstm.lstm_layer(*args.values(), False, True)
    grads = torch.ops.fastlstm.lstm_layer_backward(
        torch.ones_like(output), torch.zeros_like(h_n), torch.zeros_like(c_n), args["input"],
        args["h0"], args["c0"], args["w_ih"], args["w_hh"], None, None, False, output, gates,
        cells)
    with pytest.raises(RuntimeError, match="lstm_layer_backward is not differentiable.*"
                                           "create_graph=True"):
        grads[3].sum().backward()
