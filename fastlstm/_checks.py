"""Input validation shared by LSTM and LSTMCell. Messages and exception types
follow torch.nn.LSTM's where it has one, so that code catching those keeps
working after the swap."""
import numbers
import warnings
from collections import namedtuple

import torch

# What a layer computes in; a namedtuple, which torch.compile traces.
Compute = namedtuple("Compute", "dtype device")


def computing_as(weight, input):
    """The dtype and device a layer computes in: the weights', or under CUDA
    autocast its float16/bfloat16 (the Tensor Core kernels), as nn.LSTM does."""
    dtype = weight.dtype
    if input.is_cuda and torch.is_autocast_enabled("cuda") and dtype.is_floating_point:
        dtype = torch.get_autocast_dtype("cuda")
    return Compute(dtype, weight.device)


def under_autocast(tensor, compute):
    """The tensor in the compute dtype when autocast produced it in another
    floating dtype: nn.LSTM accepts such input; on the CPU the backend then
    computes in the weights' precision (float32 or float64) rather than fail."""
    if (tensor.dtype != compute.dtype and tensor.is_floating_point()
            and torch.is_autocast_enabled(tensor.device.type)):
        return tensor.to(compute.dtype)
    return tensor


def weights_as(weights, dtype):
    """Weights cast to the compute dtype (under CUDA autocast); the casts are
    differentiable, so gradients reach the float32 parameters."""
    for w in weights:
        if w is not None and w.dtype != dtype:
            break
    else:
        return weights
    return [w if w is None or w.dtype == dtype else w.to(dtype) for w in weights]


def check_dtype_device(name, tensor, weight, what="input"):
    """weight: the parameter (or computing_as's result) giving dtype and device."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ValueError(f"{name}: expected {what} of dtype {weight.dtype} (the weights' "
                         f"dtype), got {tensor.dtype}")
    if tensor.dtype != weight.dtype:
        raise ValueError(
            f"{name}: {what} dtype ({tensor.dtype}) does not match weight dtype "
            f"({weight.dtype}). Convert the {what}: .to({weight.dtype}), or convert the "
            f"model: model.to({tensor.dtype})")
    if tensor.device != weight.device:
        raise RuntimeError(
            f"{name}: expected {what} on {weight.device} (the weights' device), "
            f"got {what} on {tensor.device}")


def check_hidden_shape(which, tensor, expected):
    if tuple(tensor.shape) != tuple(expected):
        raise RuntimeError(f"Expected hidden[{which}] size {tuple(expected)}, got {list(tensor.shape)}")


def check_hidden_pair(name, hx):
    # nn.LSTM raises RuntimeError for a tensor or a tuple of the wrong length.
    if isinstance(hx, torch.Tensor):
        raise RuntimeError(f"{name}: expected hx as a tuple (h_0, c_0) of two tensors, got one "
                           f"Tensor of shape {list(hx.shape)}")
    if not isinstance(hx, (tuple, list)):
        raise TypeError(f"{name}: expected hx as a tuple (h_0, c_0) of two tensors, "
                        f"got {type(hx).__name__}")
    if len(hx) != 2 or not all(isinstance(t, torch.Tensor) for t in hx):
        raise RuntimeError(f"{name}: expected hx as a tuple (h_0, c_0) of two tensors, got "
                           f"{type(hx).__name__} of {len(hx)} items")


def check_lstm_config(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size):
    """nn.LSTM's constructor checks (torch.nn.RNNBase), in its order and with
    its exception types; the messages also name the value given."""
    if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
        raise ValueError("dropout should be a number in range [0, 1] representing the "
                         f"probability of an element being zeroed, got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      f"non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    if num_layers <= 0:
        raise ValueError(f"num_layers must be greater than zero, got {num_layers}")
    if not isinstance(num_layers, int):  # nn.LSTM's range(num_layers) raises TypeError
        raise TypeError(f"num_layers should be of type int, got: {type(num_layers).__name__}")
    if proj_size < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable "
                         f"projections, got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size="
                         f"{proj_size} and hidden_size={hidden_size}")
