"""`python -m fastlstm`: train a small character-level language model with
fastlstm.LSTM, compare its training speed with torch.nn.LSTM on the same
weights and batches, and sample some text from it.

The default corpus is the docstrings of part of the Python standard library,
so the demo runs anywhere without a download; `--text FILE` trains on a file.
"""
import argparse
import copy
import dataclasses
import importlib
import math
import statistics
import sys
import textwrap
import time
import warnings
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .lstm import LSTM
from ._cli import default_device, non_negative_int, positive_int

__all__ = ["DemoResult", "main"]

# Visited in this order, members sorted by name, so the corpus (and with a
# fixed seed, the whole run) is the same every time on a given Python.
STDLIB_MODULES = (
    "collections", "functools", "itertools", "json", "os", "pathlib", "re", "string",
    "textwrap", "typing", "argparse", "logging", "subprocess", "unittest", "abc", "ast",
    "base64", "bisect", "calendar", "configparser", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "glob", "gzip",
    "heapq", "inspect", "io", "ipaddress", "operator", "optparse", "pickle", "pprint",
    "queue", "random", "shlex", "shutil", "statistics", "tarfile", "tempfile", "threading",
    "urllib.parse", "uuid", "warnings", "zipfile",
)
MAX_CORPUS_CHARS = 300_000
EMBEDDING_SIZE = 64
GRAD_CLIP_NORM = 1.0
WARMUP_STEPS = 3


# ----------------------------------------------------------------------------
# Corpus and vocabulary

def stdlib_docstrings(max_chars=MAX_CORPUS_CHARS):
    """Docstrings of STDLIB_MODULES and of their public classes, methods and
    functions, each once, joined by blank lines, cut at max_chars."""
    pieces, seen, total = [], set(), 0
    for doc in _iter_stdlib_docstrings():
        if doc in seen:
            continue
        seen.add(doc)
        pieces.append(doc)
        total += len(doc) + 2
        if total >= max_chars:
            break
    text = "\n\n".join(pieces)[:max_chars]
    if not text:
        raise SystemExit("found no standard-library docstrings (does `python -OO` strip "
                         "them?); pass a corpus with --text FILE")
    return text


def _iter_stdlib_docstrings():
    for name in STDLIB_MODULES:
        # Deprecated names (typing.io, ...) warn when touched; reading their
        # docstrings is no use of them worth a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                module = importlib.import_module(name)
            except ImportError:  # a module left out of a minimal Python build
                continue
            docs = [getattr(obj, "__doc__", None) for obj in _documented_objects(module)]
        for doc in docs:
            if isinstance(doc, str) and doc.strip():
                yield _clean_docstring(doc)


def _documented_objects(module):
    """The module, then its own public classes and functions (not re-exports,
    which would repeat other modules), each class followed by its public
    methods and properties."""
    yield module
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if not callable(obj):
            continue
        yield obj
        if isinstance(obj, type):
            for member_name, member in sorted(vars(obj).items()):
                # Plain values are skipped: an int's __doc__ is int's docstring.
                if not member_name.startswith("_") and (
                        callable(member) or isinstance(member, (property, classmethod, staticmethod))):
                    yield member


def _clean_docstring(doc):
    # Only lines after the first carry the source's indentation.
    first, _, rest = doc.strip("\n").partition("\n")
    return (first.strip() + "\n" + textwrap.dedent(rest)).strip()


def read_text_file(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise SystemExit(f"--text {path}: {e.strerror}") from e
    if not text:
        raise SystemExit(f"--text {path}: the file is empty")
    return text


class CharVocab:
    """Characters of a corpus <-> token ids."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.ids = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        """Token ids of text; characters not in the corpus are dropped."""
        return [self.ids[ch] for ch in text if ch in self.ids]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)


class TokenStreams:
    """The corpus cut into batch_size equal parallel streams, read as
    consecutive chunks of seq_len tokens (time-major, [seq_len, batch]).

    Chunk k of every stream continues chunk k - 1, so the LSTM state at the end
    of one chunk is the right initial state of the next (truncated BPTT)."""

    def __init__(self, tokens, batch_size, seq_len, device):
        needed = batch_size * (seq_len + 1)
        if len(tokens) < needed:  # a short --text: repeat it so every stream holds a chunk
            tokens = tokens * math.ceil(needed / len(tokens))
        stream_len = len(tokens) // batch_size
        data = torch.tensor(tokens[:batch_size * stream_len], dtype=torch.long)
        self.streams = data.view(batch_size, stream_len).t().contiguous().to(device)
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.chunks_per_pass = (stream_len - 1) // seq_len
        self.next_index = 0

    @property
    def tokens_per_chunk(self):
        return self.seq_len * self.batch_size

    def next_chunk(self):
        """(inputs, targets, restarts): targets are inputs shifted by one;
        restarts is True when the streams start over, where the carried state
        must be dropped."""
        if self.next_index == self.chunks_per_pass:
            self.next_index = 0
        start = self.next_index * self.seq_len
        restarts = self.next_index == 0
        self.next_index += 1
        inputs = self.streams[start:start + self.seq_len]
        targets = self.streams[start + 1:start + self.seq_len + 1]
        return inputs, targets, restarts


# ----------------------------------------------------------------------------
# Model and training

class CharLanguageModel(nn.Module):
    """Embedding -> multi-layer LSTM -> Linear over the vocabulary."""

    def __init__(self, vocab_size, hidden_size, num_layers, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_SIZE, **factory)
        self.lstm = LSTM(EMBEDDING_SIZE, hidden_size, num_layers, **factory)
        self.head = nn.Linear(hidden_size, vocab_size, **factory)

    def forward(self, tokens, state=None):
        """tokens [seq_len, batch] -> logits [seq_len, batch, vocab], (h_n, c_n)."""
        output, state = self.lstm(self.embedding(tokens), state)
        return self.head(output), state


def with_torch_lstm(model):
    """A copy of model whose LSTM is a torch.nn.LSTM with the same weights."""
    twin = copy.deepcopy(model)
    twin.lstm = model.lstm.to_torch()
    return twin


def make_optimizer(model, lr):
    return torch.optim.Adam(model.parameters(), lr=lr)


def train_step(model, optimizer, inputs, targets, state):
    """One forward + backward + Adam step; returns the loss (a tensor, so that
    no device sync happens here) and the detached final state to carry on."""
    logits, (h_n, c_n) = model(inputs, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
    optimizer.step()
    # Detached: gradients stop at the chunk boundary, the state itself goes on.
    return loss.detach(), (h_n.detach(), c_n.detach())


def train(model, streams, steps, lr):
    """Trains model for steps chunks; returns the loss of every step and the
    wall time spent."""
    optimizer = make_optimizer(model, lr)
    state, losses, smoothed = None, [], None
    started = time.perf_counter()
    with tqdm(range(steps), desc="training fastlstm", unit="step", dynamic_ncols=True) as bar:
        for _ in bar:
            inputs, targets, restarts = streams.next_chunk()
            if restarts:
                state = None
            loss, state = train_step(model, optimizer, inputs, targets, state)
            losses.append(loss.item())
            smoothed = losses[-1] if smoothed is None else 0.9 * smoothed + 0.1 * losses[-1]
            bar.set_postfix(loss=f"{smoothed:.3f}", refresh=False)
    return losses, time.perf_counter() - started


def averaged_ends(losses):
    """Mean loss over the first and over the last few steps (single steps are
    noisy; the window is a fifth of the run, at most 20 steps)."""
    window = max(1, min(20, len(losses) // 5))
    return statistics.fmean(losses[:window]), statistics.fmean(losses[-window:]), window


# ----------------------------------------------------------------------------
# Speed comparison

def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_training_speed(model, streams, timed_steps, lr):
    """Training tokens/s of copies of model with fastlstm.LSTM and with
    torch.nn.LSTM (same weights), fed the same chunks.

    The two alternate step by step, swapping which goes first each round, so
    that drifts in machine load hit both alike; the first WARMUP_STEPS of each
    are not timed, and the median step time is used."""
    device = next(model.parameters()).device
    contenders = {"fastlstm.LSTM": copy.deepcopy(model), "torch.nn.LSTM": with_torch_lstm(model)}
    optimizers = {name: make_optimizer(m, lr) for name, m in contenders.items()}
    states = dict.fromkeys(contenders)
    step_times = {name: [] for name in contenders}
    for round_index in range(WARMUP_STEPS + timed_steps):
        inputs, targets, restarts = streams.next_chunk()
        order = list(contenders) if round_index % 2 == 0 else list(reversed(contenders))
        for name in order:
            state = None if restarts else states[name]
            synchronize(device)
            started = time.perf_counter()
            _, states[name] = train_step(contenders[name], optimizers[name], inputs, targets, state)
            synchronize(device)
            if round_index >= WARMUP_STEPS:
                step_times[name].append(time.perf_counter() - started)
    return {name: streams.tokens_per_chunk / statistics.median(times)
            for name, times in step_times.items()}


# ----------------------------------------------------------------------------
# Sampling

@torch.no_grad()
def generate(model, vocab, prompt, length, temperature, generator):
    """length characters sampled after prompt, one at a time, carrying the
    LSTM state instead of re-reading the text."""
    model.eval()
    try:
        device = next(model.parameters()).device
        # A prompt of characters the corpus never had starts from any one that it has.
        prompt_ids = vocab.encode(prompt) or [0]
        tokens = torch.tensor(prompt_ids, device=device).view(-1, 1)
        logits, state = model(tokens)
        sampled = []
        for _ in range(length):
            probs = torch.softmax(logits[-1, 0].double().cpu() / temperature, dim=0)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
            sampled.append(next_id)
            logits, state = model(torch.tensor([[next_id]], device=device), state)
        return vocab.decode(sampled)
    finally:
        model.train()


# ----------------------------------------------------------------------------
# Command line

@dataclasses.dataclass
class DemoResult:
    """What `python -m fastlstm` measured, for callers and tests."""
    losses: List[float]     # training loss of every step
    first_loss: float       # mean over the first `loss_window` steps
    last_loss: float        # mean over the last `loss_window` steps
    loss_window: int
    train_tokens_per_s: float                      # the main training run (fastlstm)
    fastlstm_tokens_per_s: Optional[float] = None  # the comparison; None with --no-compare
    torch_tokens_per_s: Optional[float] = None
    sample: str = ""        # the generated characters, without the prompt


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fastlstm",
        description="Train a character-level language model with fastlstm.LSTM, compare "
                    "its training speed with torch.nn.LSTM, and sample from it. Without "
                    "--text it trains on docstrings of the Python standard library.")
    parser.add_argument("--text", metavar="FILE", help="train on this UTF-8 text file")
    parser.add_argument("--device", default=default_device(),
                        help="torch device (default: %(default)s)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                        help="parameter dtype (default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, default=1000,
                        help="training steps, one chunk per step (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="parallel text streams (default: %(default)s)")
    parser.add_argument("--seq-len", type=positive_int, default=64,
                        help="characters per chunk: the truncated-BPTT length "
                             "(default: %(default)s)")
    parser.add_argument("--hidden-size", type=positive_int, default=256,
                        help="(default: %(default)s)")
    parser.add_argument("--layers", type=positive_int, default=2, help="(default: %(default)s)")
    parser.add_argument("--lr", type=float, default=4e-3,
                        help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--sample-len", type=non_negative_int, default=200,
                        help="characters to generate (default: %(default)s)")
    parser.add_argument("--prompt", default="Return the ",
                        help="text the sample continues (default: %(default)r)")
    parser.add_argument("--temperature", type=float, default=0.7,
                        help="sampling temperature (default: %(default)s)")
    parser.add_argument("--compare-steps", type=positive_int, default=10,
                        help="timed steps per LSTM in the speed comparison "
                             "(default: %(default)s)")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the speed comparison with torch.nn.LSTM")
    return parser


def parse_demo_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.device = torch.device(args.device)
    except RuntimeError as e:
        parser.error(f"--device: {e}")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available in this torch build "
                     f"or on this machine")
    if args.temperature <= 0:
        parser.error(f"--temperature must be positive, got {args.temperature}")
    args.dtype = getattr(torch, args.dtype)
    return args


def load_corpus(path):
    """(text, a description of where it came from)."""
    if path:
        return read_text_file(path), path
    return stdlib_docstrings(), "docstrings of the Python standard library"


def run_demo(args):
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    text, source = load_corpus(args.text)
    vocab = CharVocab(text)
    streams = TokenStreams(vocab.encode(text), args.batch_size, args.seq_len, args.device)
    model = CharLanguageModel(len(vocab), args.hidden_size, args.layers, args.device, args.dtype)
    n_params = sum(p.numel() for p in model.parameters())

    print(f"corpus: {source}: {len(text):,} characters, vocabulary of {len(vocab)}")
    print(f"model: Embedding({len(vocab)}, {EMBEDDING_SIZE}) -> fastlstm.{model.lstm!r} -> "
          f"Linear({args.hidden_size}, {len(vocab)}), {n_params:,} parameters, "
          f"{args.device} {str(args.dtype).removeprefix('torch.')}")
    print(f"training: {args.steps} steps of {args.batch_size} streams x {args.seq_len} "
          f"characters, Adam lr {args.lr}, (h, c) carried across chunks (truncated BPTT)")

    losses, train_seconds = train(model, streams, args.steps, args.lr)
    first_loss, last_loss, window = averaged_ends(losses)
    result = DemoResult(losses, first_loss, last_loss, window,
                        train_tokens_per_s=args.steps * streams.tokens_per_chunk / train_seconds)
    print(f"loss: {first_loss:.3f} (mean of first {window} steps) -> {last_loss:.3f} "
          f"(mean of last {window} steps); training ran at {result.train_tokens_per_s:,.0f} "
          f"tokens/s")

    if not args.no_compare:
        speeds = compare_training_speed(model, streams, args.compare_steps, args.lr)
        result.fastlstm_tokens_per_s = speeds["fastlstm.LSTM"]
        result.torch_tokens_per_s = speeds["torch.nn.LSTM"]
        print_speed_comparison(speeds, args.compare_steps)

    generator = torch.Generator().manual_seed(args.seed)
    result.sample = generate(model, vocab, args.prompt, args.sample_len, args.temperature,
                             generator)
    print(f"sample (temperature {args.temperature}), prompt {args.prompt!r}:")
    print(args.prompt + result.sample)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return result


def print_speed_comparison(speeds, timed_steps):
    print(f"training speed, same weights and batches (forward + backward + Adam step, "
          f"median of {timed_steps} alternating steps after {WARMUP_STEPS} warm-up):")
    for name, tokens_per_s in speeds.items():
        print(f"  {name:<14} {tokens_per_s:>12,.0f} tokens/s")
    ratio = speeds["fastlstm.LSTM"] / speeds["torch.nn.LSTM"]
    print(f"  ratio fastlstm / nn.LSTM: {ratio:.2f}x (above 1: fastlstm is faster)")


def main(argv=None):
    """The demo of `python -m fastlstm` (fastlstm/__main__.py sends `bench` to
    fastlstm/bench/); returns the DemoResult."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_demo(parse_demo_args(argv))
