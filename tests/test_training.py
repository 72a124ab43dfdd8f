"""Training use: stateful truncated BPTT with an optimizer, learnable initial
states, gradient accumulation, all against nn.LSTM doing the same."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import FP32_TOL, assert_all_close, make_pair

TBPTT_CONFIGS = {
    "2layer": dict(input_size=4, hidden_size=6, num_layers=2),
    "2layer_bidir_proj_batch_first": dict(input_size=4, hidden_size=6, num_layers=2,
                                         bidirectional=True, proj_size=3, batch_first=True),
}


def chunks(config, count=6, steps=5, batch=3):
    """(input, target) minibatches of one long stream, laid out for the module."""
    gen = torch.Generator().manual_seed(9)
    out_width = (config.get("proj_size") or config["hidden_size"]) * (2 if config.get("bidirectional") else 1)
    shape = (batch, steps) if config.get("batch_first") else (steps, batch)
    return [(torch.randn(*shape, config["input_size"], generator=gen),
             torch.randn(*shape, out_width, generator=gen)) for _ in range(count)]


def train_tbptt(module, data, lr=0.1):
    """One optimizer step per chunk, carrying the detached final state into the next chunk."""
    optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.5)
    state, losses = None, []
    for x, target in data:
        optimizer.zero_grad()
        output, state = module(x, state)
        loss = F.mse_loss(output, target)
        loss.backward()
        optimizer.step()
        state = tuple(s.detach() for s in state)
        losses.append(loss.detach())
    return torch.stack(losses), state


@pytest.mark.parametrize("name", TBPTT_CONFIGS)
def test_truncated_bptt_with_sgd_matches_torch(name):
    config = TBPTT_CONFIGS[name]
    ref, fast = make_pair(**config)
    initial = {k: v.clone() for k, v in ref.state_dict().items()}
    data = chunks(config)
    ref_losses, ref_state = train_tbptt(ref, data)
    fast_losses, fast_state = train_tbptt(fast, data)
    torch.testing.assert_close(fast_losses, ref_losses, **FP32_TOL)
    assert_all_close(fast_state, ref_state, **FP32_TOL)
    for (name_f, p_f), (name_r, p_r) in zip(fast.named_parameters(), ref.named_parameters()):
        assert name_f == name_r
        assert not torch.equal(p_r, initial[name_r]), f"{name_r} did not move"
        torch.testing.assert_close(p_f, p_r, **FP32_TOL, msg=name_f)


@pytest.mark.parametrize("shared_initial_state", [False, True], ids=["per_sequence", "expanded"])
@pytest.mark.parametrize("name", TBPTT_CONFIGS)
def test_gradients_reach_input_initial_state_and_every_weight(name, shared_initial_state):
    config = TBPTT_CONFIGS[name]
    ref, fast = make_pair(**config)
    (x, target), = chunks(config, count=1)
    grads = []
    for module in (ref, fast):
        layers = module.num_layers * (2 if module.bidirectional else 1)
        batch = x.shape[0] if module.batch_first else x.shape[1]
        # A learned initial state is often one vector expanded (stride 0) over the batch.
        rows = 1 if shared_initial_state else batch
        gen = torch.Generator().manual_seed(3)
        h0 = nn.Parameter(torch.randn(layers, rows, module.proj_size or module.hidden_size, generator=gen))
        c0 = nn.Parameter(torch.randn(layers, rows, module.hidden_size, generator=gen))
        leaf_x = x.clone().requires_grad_()
        output, (h_n, c_n) = module(leaf_x, (h0.expand(-1, batch, -1), c0.expand(-1, batch, -1)))
        (F.mse_loss(output, target) + h_n.square().mean() + c_n.mean()).backward()
        named = {"input": leaf_x.grad, "h0": h0.grad, "c0": c0.grad}
        named.update({n: p.grad for n, p in module.named_parameters()})
        grads.append(named)
    ref_grads, fast_grads = grads
    assert fast_grads.keys() == ref_grads.keys()
    for key, expected in ref_grads.items():
        actual = fast_grads[key]
        assert actual is not None, f"no gradient for {key}"
        assert actual.abs().sum() > 0, f"zero gradient for {key}"
        torch.testing.assert_close(actual, expected, **FP32_TOL, msg=key)


def test_gradients_accumulate_over_two_calls_like_torch():
    ref, fast = make_pair(input_size=3, hidden_size=5, num_layers=2, bidirectional=True)
    for module in (ref, fast):
        torch.manual_seed(4)
        first, (h, c) = module(torch.randn(4, 2, 3))
        second, _ = module(torch.randn(3, 2, 3), (h, c))
        (first.sum() + second.square().sum()).backward()
        torch.manual_seed(5)
        module(torch.randn(2, 2, 3))[0].sum().backward()
    for p_f, p_r in zip(fast.parameters(), ref.parameters()):
        torch.testing.assert_close(p_f.grad, p_r.grad, **FP32_TOL)


def test_no_grad_forward_matches_and_builds_no_graph():
    ref, fast = make_pair(input_size=3, hidden_size=5, num_layers=2)
    x = torch.randn(4, 2, 3)
    with torch.no_grad():
        output, _ = fast(x)
        expected, _ = ref(x)
    assert output.grad_fn is None and not output.requires_grad
    torch.testing.assert_close(output, expected, **FP32_TOL)
    with torch.inference_mode():
        inference_output, _ = fast(x)
    assert torch.equal(inference_output, output)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cpu_autocast_runs_in_weight_precision(dtype):
    """Under autocast a Linear hands the LSTM reduced-precision input, which
    nn.LSTM accepts; fastlstm computes it in float32 and stays within 2x
    nn.LSTM's own low-precision error against a float32 run."""
    torch.manual_seed(0)
    proj = torch.nn.Linear(6, 6)
    ref, fast = make_pair(input_size=6, hidden_size=8, num_layers=2)
    x = torch.randn(5, 3, 6)
    expected, _ = ref(proj(x))
    with torch.autocast("cpu", dtype=dtype):
        ref_low, _ = ref(proj(x))
        ours, (h_n, c_n) = fast(proj(x))
    torch_error = (ref_low.float() - expected).abs().max()
    assert (ours.float() - expected).abs().max() <= 2 * torch_error + 1e-6
    assert h_n.dtype == c_n.dtype == torch.float32
