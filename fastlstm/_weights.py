"""A layer direction's weights as the ops take them, by nn.LSTM's parameter
names: shared by fastlstm.LSTM and the reference (which runs nn.LSTM's own
parameters too)."""


def layer_weights(module, layer, direction):
    """(w_ih, w_hh, b_ih + b_hh or None, w_hr or None) of one layer direction
    of an nn.LSTM-like module, by nn.LSTM's parameter names."""
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    get = lambda name: getattr(module, name + suffix)  # noqa: E731
    bias = get("bias_ih") + get("bias_hh") if module.bias else None
    return get("weight_ih"), get("weight_hh"), bias, get("weight_hr") if module.proj_size else None
