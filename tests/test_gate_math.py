"""The CPU backend's gate nonlinearities (csrc/gate_math.h: sigmoid and tanh
through a vectorizable polynomial exp) against float64 references, through
fastlstm::_gate_activations, which runs the same compiled loop as the LSTM."""
import math

import pytest
import torch

GATE_ACTIVATIONS = torch.ops.fastlstm._gate_activations

# Every float32 in [-20, 20] at spacing 2^-12 (about 164k points), plus the
# range where sigmoid/tanh saturate and the clamp inside exp() engages.
DENSE = torch.arange(-20 * 4096, 20 * 4096 + 1, dtype=torch.float64) / 4096
WIDE = torch.linspace(-200, 200, 40001, dtype=torch.float64)


def errors(x64):
    sig, tanh = GATE_ACTIVATIONS(x64.float())
    return ((sig.double() - torch.sigmoid(x64)).abs().max().item(),
            (tanh.double() - torch.tanh(x64)).abs().max().item())


@pytest.mark.parametrize("x", [DENSE, WIDE], ids=["dense", "wide"])
def test_float32_activations_within_stated_bound(x):
    # Values lie in (-1, 1); 4 float32 ulps of 1 (2^-21, about 4.8e-7) is far
    # inside the 1e-5 tolerance of the parity tests.
    sig_err, tanh_err = errors(x)
    assert sig_err <= 2 ** -21, sig_err
    assert tanh_err <= 2 ** -21, tanh_err


def test_float32_activations_as_accurate_as_torch_float32():
    ours = errors(DENSE)
    torch_sig = (torch.sigmoid(DENSE.float()).double() - torch.sigmoid(DENSE)).abs().max().item()
    torch_tanh = (torch.tanh(DENSE.float()).double() - torch.tanh(DENSE)).abs().max().item()
    assert ours[0] <= 4 * max(torch_sig, 2 ** -24)
    assert ours[1] <= 4 * max(torch_tanh, 2 ** -24)


def test_float64_activations_match_torch():
    sig, tanh = GATE_ACTIVATIONS(DENSE)
    torch.testing.assert_close(sig, torch.sigmoid(DENSE), atol=1e-15, rtol=1e-14)
    torch.testing.assert_close(tanh, torch.tanh(DENSE), atol=1e-15, rtol=1e-14)


def ulps_from_libm(values, x, fn):
    """Largest distance of values from fn (Python's math, correctly rounded or
    nearly) at x, in units of the last place of the exact value."""
    exact = torch.tensor([fn(v) for v in x.tolist()], dtype=torch.float64)
    spacing = torch.nextafter(exact.abs(), torch.tensor(math.inf, dtype=torch.float64)) - exact.abs()
    return ((values - exact).abs() / spacing).max().item()


def libm_sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v > -700 else math.exp(v)


# Down to 1e-300 on both sides, where tanh's relative error is the test.
TINY = torch.logspace(-300, 0, 3001, dtype=torch.float64)
FLOAT64_POINTS = torch.cat([DENSE[::8], WIDE[::4], TINY, -TINY])


def test_float64_activations_as_accurate_as_torch_float64():
    """The SIMD engines' float64 exp (a polynomial, not libm) keeps sigmoid and
    tanh within 4 ulp of the exact values, as torch's own (Sleef, measured 2 ulp
    for both on this grid)."""
    x = FLOAT64_POINTS[FLOAT64_POINTS > -700]  # sigmoid below it is subnormal
    sig, tanh = GATE_ACTIVATIONS(x)
    assert ulps_from_libm(sig, x, libm_sigmoid) <= 4
    assert ulps_from_libm(tanh, x, math.tanh) <= 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_special_values(dtype):
    x = torch.tensor([float("nan"), float("inf"), float("-inf"), 0.0, -0.0], dtype=dtype)
    sig, tanh = GATE_ACTIVATIONS(x)
    assert torch.isnan(sig[0]) and torch.isnan(tanh[0])
    assert sig[1] == 1 and tanh[1] == 1
    assert sig[2] == 0 and tanh[2] == -1
    assert sig[3] == 0.5 and tanh[3] == 0 and tanh[4] == 0


# Every float32 from -120 to -80 at spacing 2^-12: sigmoid underflows there.
UNDERFLOW = torch.arange(-120 * 4096, -80 * 4096 + 1, dtype=torch.float64).float() / 4096


def test_float32_sigmoid_is_zero_exactly_where_torchs_is():
    """Where exp(-x) overflows float32 (x < -88.72), 1 / (1 + exp(-x)) is 0,
    in torch and in fastlstm; above, both keep the denormal values."""
    sig, tanh = GATE_ACTIVATIONS(UNDERFLOW)
    expected = torch.sigmoid(UNDERFLOW)
    assert torch.equal(sig == 0, expected == 0)
    assert (sig.double() - expected.double()).abs().max() <= 2 ** -130
    assert bool((tanh == -1).all())


def saturated_lstm_results(module, value):
    """Outputs and every gradient of an LSTM fed an input of `value` (near the
    float32 limit, or infinite): its gates saturate at exactly 0 and 1."""
    module.zero_grad()
    x = torch.tensor([[[value, 1.0]], [[0.5, -value]], [[0.25, 0.5]]], requires_grad=True)
    output, (h_n, c_n) = module(x)
    (output.sum() + c_n.sum()).backward()
    return [output, h_n, c_n, x.grad] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize("backend", ["native", "emulated"])
@pytest.mark.parametrize("value", [3.4e38, -3.4e38, float("inf"), float("-inf")])
def test_saturated_gates_give_torchs_gradients(value, backend):
    """A gate at exactly 0 passes no gradient (0, where the input is finite)
    and gives NaN against an infinite input, as torch's does."""
    import fastlstm

    torch.manual_seed(0)
    ref = torch.nn.LSTM(2, 3)
    fast = fastlstm.LSTM.from_torch(ref)
    expected = saturated_lstm_results(ref, value)
    with fastlstm.backend(backend):
        actual = saturated_lstm_results(fast, value)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, equal_nan=True, atol=1e-5, rtol=1e-4)


def test_nan_input_propagates_through_the_lstm():
    import fastlstm

    model = fastlstm.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    x[2, 0, 1] = float("nan")
    out, (h_n, c_n) = model(x)
    assert torch.isnan(out[2:, 0]).all() and not torch.isnan(out[:, 1]).any()
    assert torch.isnan(h_n[0, 0]).all() and torch.isnan(c_n[0, 0]).all()
