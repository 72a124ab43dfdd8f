"""Input validation shared by LSTM and LSTMCell. Messages and exception types
follow torch.nn.LSTM's where it has one, so that code catching those keeps
working after the swap."""
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
    if not tensor.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating-point {what} of dtype {weight.dtype}, "
            f"got {tensor.dtype}")
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
