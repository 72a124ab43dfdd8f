"""fastlstm.LSTM as an nn.Module: initialization, state_dict, conversion from
and to nn.LSTM, pickling, repr, dtype conversion and dropout."""
import copy
import io
import warnings

import pytest
import torch
from torch import nn

import fastlstm
from conftest import FP32_TOL, FP64_TOL, assert_all_close, make_pair

CONFIGS = [
    dict(input_size=3, hidden_size=5),
    dict(input_size=3, hidden_size=5, num_layers=3, bidirectional=True),
    dict(input_size=4, hidden_size=6, num_layers=2, proj_size=2, batch_first=True),
    dict(input_size=4, hidden_size=6, num_layers=2, bias=False, bidirectional=True, proj_size=3),
    dict(input_size=2, hidden_size=3, num_layers=2, dropout=0.25),
]
IDS = ["default", "3layer_bidir", "proj_batch_first", "no_bias_bidir_proj", "dropout"]


def assert_state_dicts_equal(actual, expected):
    assert list(actual) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=0, atol=0, msg=key)


def forward_once(module, seed=3, steps=4, batch=2):
    torch.manual_seed(seed)
    x = torch.randn(steps, batch, module.input_size, dtype=module.weight_ih_l0.dtype)
    if module.batch_first:
        x = x.transpose(0, 1)
    output, (h_n, c_n) = module(x)
    return output, h_n, c_n


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_same_seed_gives_same_parameters_as_torch(config):
    torch.manual_seed(11)
    ref = nn.LSTM(**config)
    torch.manual_seed(11)
    fast = fastlstm.LSTM(**config)
    assert [(n, p.shape) for n, p in fast.named_parameters()] == \
        [(n, p.shape) for n, p in ref.named_parameters()]
    assert_state_dicts_equal(fast.state_dict(), ref.state_dict())
    torch.manual_seed(12)
    ref.reset_parameters()
    torch.manual_seed(12)
    fast.reset_parameters()
    assert_state_dicts_equal(fast.state_dict(), ref.state_dict())


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_load_state_dict_both_ways(config):
    torch.manual_seed(0)
    ref, fast = nn.LSTM(**config), fastlstm.LSTM(**config)
    fast.load_state_dict(ref.state_dict(), strict=True)
    assert_state_dicts_equal(fast.state_dict(), ref.state_dict())
    other = fastlstm.LSTM(**config)
    ref.load_state_dict(other.state_dict(), strict=True)
    assert_state_dicts_equal(ref.state_dict(), other.state_dict())


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_from_torch_to_torch_round_trip(config):
    torch.manual_seed(0)
    ref = nn.LSTM(**config).eval()
    fast = fastlstm.LSTM.from_torch(ref)
    assert isinstance(fast, fastlstm.LSTM) and not fast.training
    back = fast.to_torch()
    assert type(back) is nn.LSTM and not back.training
    for key in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                "bidirectional", "proj_size"):
        assert getattr(fast, key) == getattr(ref, key) == getattr(back, key), key
    assert_state_dicts_equal(fast.state_dict(), ref.state_dict())
    assert_state_dicts_equal(back.state_dict(), ref.state_dict())
    assert_all_close(forward_once(fast), forward_once(ref), **FP32_TOL)
    assert_all_close(forward_once(back), forward_once(ref))


def test_from_torch_keeps_dtype_and_training_mode():
    ref = nn.LSTM(3, 5, num_layers=2, dtype=torch.float64).train()
    fast = fastlstm.LSTM.from_torch(ref)
    assert fast.training
    assert all(p.dtype == torch.float64 for p in fast.parameters())
    assert all(p.dtype == torch.float64 for p in fast.to_torch().parameters())


def test_conversions_copy_weights_rather_than_share_them():
    ref = nn.LSTM(3, 5)
    fast = fastlstm.LSTM.from_torch(ref)
    with torch.no_grad():
        fast.weight_ih_l0.add_(1.0)
    assert not torch.equal(fast.weight_ih_l0, ref.weight_ih_l0)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_pickled_whole_model_gives_identical_outputs(config):
    torch.manual_seed(0)
    fast = fastlstm.LSTM(**config).eval()
    buffer = io.BytesIO()
    torch.save(fast, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded) is fastlstm.LSTM and not loaded.training
    assert_state_dicts_equal(loaded.state_dict(), fast.state_dict())
    assert_all_close(forward_once(loaded), forward_once(fast))
    assert_all_close(forward_once(copy.deepcopy(fast)), forward_once(fast))


@pytest.mark.parametrize("config", CONFIGS + [dict(input_size=3, hidden_size=5, dropout=0.5,
                                                   num_layers=2, batch_first=True)],
                         ids=IDS + ["dropout_batch_first"])
def test_repr_matches_torch(config):
    ref, fast = nn.LSTM(**config), fastlstm.LSTM(**config)
    assert fast.extra_repr() == ref.extra_repr()
    assert str(fast) == str(ref).replace(type(ref).__name__, type(fast).__name__)


def test_flatten_parameters_is_a_harmless_no_op():
    _, fast = make_pair(input_size=3, hidden_size=5, num_layers=2)
    before = forward_once(fast)
    state = copy.deepcopy(fast.state_dict())
    assert fast.flatten_parameters() is None
    assert_state_dicts_equal(fast.state_dict(), state)
    assert_all_close(forward_once(fast), before)


@pytest.mark.parametrize("convert", [lambda m: m.double(), lambda m: m.to(torch.float64)],
                         ids=["double", "to_float64"])
def test_converted_to_float64_matches_torch(convert):
    ref, fast = make_pair(input_size=3, hidden_size=5, num_layers=2, bidirectional=True, proj_size=2)
    ref, fast = convert(ref), convert(fast)
    assert all(p.dtype == torch.float64 for p in fast.parameters())
    actual, expected = forward_once(fast), forward_once(ref)
    assert actual[0].dtype == torch.float64
    assert_all_close(actual, expected, **FP64_TOL)


def test_eval_mode_with_dropout_matches_torch():
    ref, fast = make_pair(input_size=3, hidden_size=5, num_layers=3, dropout=0.5, bidirectional=True)
    ref.eval()
    fast.eval()
    assert_all_close(forward_once(fast), forward_once(ref), **FP32_TOL)


def test_train_mode_dropout_is_applied_and_seeded():
    _, fast = make_pair(input_size=3, hidden_size=5, num_layers=2, dropout=0.5)
    fast.train()
    first, second = forward_once(fast, seed=7), forward_once(fast, seed=7)
    other_seed = forward_once(fast, seed=8)
    fast.eval()
    evaluated = forward_once(fast, seed=7)
    assert_all_close(first, second)
    assert not torch.allclose(first[0], evaluated[0])
    assert not torch.allclose(first[0], other_seed[0])
    # Dropout sits between layers, so the first layer's final state is untouched by it.
    torch.testing.assert_close(first[1][0], evaluated[1][0], rtol=0, atol=0)


def test_train_mode_without_dropout_is_deterministic_and_equals_eval():
    _, fast = make_pair(input_size=3, hidden_size=5, num_layers=2)
    train_out = forward_once(fast.train())
    eval_out = forward_once(fast.eval())
    assert_all_close(train_out, eval_out)


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1") as ours:
        fastlstm.LSTM(3, 5, dropout=0.5)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        nn.LSTM(3, 5, dropout=0.5)
    assert str(ours[0].message) == str(theirs[0].message)


@pytest.mark.parametrize("kwargs", [
    dict(proj_size=5), dict(proj_size=-1), dict(dropout=1.5), dict(dropout=-0.1),
    dict(num_layers=0), dict(hidden_size=0), dict(hidden_size=2.5),
], ids=str)
def test_bad_constructor_arguments_raise_like_torch(kwargs):
    full = {"input_size": 3, "hidden_size": 5, **kwargs}
    with pytest.raises(Exception) as theirs:
        nn.LSTM(**full)
    with pytest.raises(type(theirs.value)) as ours:
        fastlstm.LSTM(**full)
    assert type(ours.value) is type(theirs.value)
    # Same message as nn.LSTM's, optionally followed by the value that was given.
    assert str(ours.value).startswith(str(theirs.value))


def test_is_a_plain_module_with_torch_lstm_attributes():
    fast = fastlstm.LSTM(3, 5, num_layers=2)
    assert isinstance(fast, nn.Module) and not isinstance(fast, nn.LSTM)
    ref = nn.LSTM(3, 5, num_layers=2)
    for key in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                "bidirectional", "proj_size"):
        assert getattr(fast, key) == getattr(ref, key)


def test_meta_device_model_infers_shapes_like_torch():
    config = dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True, proj_size=2)
    ref, fast = nn.LSTM(**config, device="meta"), fastlstm.LSTM(**config, device="meta")
    x = torch.empty(4, 2, 3, device="meta")
    (out, (h, c)), (ref_out, (ref_h, ref_c)) = fast(x), ref(x)
    assert out.device.type == "meta"
    assert (out.shape, h.shape, c.shape) == (ref_out.shape, ref_h.shape, ref_c.shape)


@pytest.mark.parametrize("config", [dict(num_layers=2, bidirectional=True),
                                    dict(proj_size=2, bias=False)])
def test_all_weights_lists_parameters_like_nn_lstm(config):
    ref, fast = make_pair(input_size=3, hidden_size=4, **config)
    assert [[tuple(p.shape) for p in group] for group in fast.all_weights] == \
        [[tuple(p.shape) for p in group] for group in ref.all_weights]
    for ours, theirs in zip(fast.all_weights, ref.all_weights):
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)
