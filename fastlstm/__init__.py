"""fastlstm: torch.nn.LSTM and LSTMCell with fused C++ (and CUDA) kernels.

Swap ``torch.nn.LSTM`` for ``fastlstm.LSTM``: same constructor, parameters,
state_dict, inputs (including PackedSequence) and outputs."""
from . import reference
from ._autotune import autotune
from ._backend import backend, backend_state, default_from_env
from ._ops import lstm_layer
from .cell import LSTMCell
from .lstm import LSTM

__all__ = ["LSTM", "LSTMCell", "autotune", "backend", "backend_state", "lstm_layer",
           "reference"]
__version__ = "0.1.0"

default_from_env()
