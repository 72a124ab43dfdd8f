"""The `python -m fastlstm` demo, run small: in-process through main(argv) and
once as a subprocess."""
import math
import os
import subprocess
import sys

import pytest

from fastlstm import demo

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = ["--device", "cpu", "--hidden-size", "16", "--layers", "2",
              "--batch-size", "4", "--seq-len", "8", "--compare-steps", "2"]


@pytest.fixture
def repetitive_text(tmp_path):
    # A short repeating phrase: a tiny model learns it within a few dozen steps.
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    return path


def test_loss_falls_on_repetitive_text(repetitive_text):
    result = demo.main(TINY_MODEL + ["--text", str(repetitive_text), "--steps", "80",
                                     "--lr", "0.03", "--sample-len", "25", "--prompt", "the "])
    assert len(result.losses) == 80
    assert all(math.isfinite(loss) for loss in result.losses)
    assert math.isfinite(result.first_loss) and math.isfinite(result.last_loss)
    assert result.last_loss < 0.7 * result.first_loss
    assert result.train_tokens_per_s > 0
    assert result.fastlstm_tokens_per_s > 0
    assert result.torch_tokens_per_s > 0
    assert isinstance(result.sample, str) and len(result.sample) == 25
    assert set(result.sample) <= set("the cat sat on the mat. ")


def test_default_corpus_runs_without_comparison():
    result = demo.main(TINY_MODEL + ["--steps", "3", "--seq-len", "4", "--sample-len", "7",
                                     "--no-compare", "--dtype", "float64"])
    assert len(result.losses) == 3 and all(math.isfinite(x) for x in result.losses)
    assert result.fastlstm_tokens_per_s is None and result.torch_tokens_per_s is None
    assert len(result.sample) == 7


def test_stdlib_corpus_is_deterministic_and_bounded():
    text = demo.stdlib_docstrings(max_chars=20_000)
    assert len(text) == 20_000
    assert text == demo.stdlib_docstrings(max_chars=20_000)


def test_text_shorter_than_one_batch_is_repeated(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abc", encoding="utf-8")
    result = demo.main(TINY_MODEL + ["--text", str(path), "--steps", "2", "--sample-len", "5"])
    assert len(result.losses) == 2 and set(result.sample) <= set("abc")


def test_invalid_dtype_is_rejected_with_a_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--dtype", "float16", "--steps", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--dtype" in err and "float16" in err and "float32" in err


def test_command_line_smoke():
    command = [sys.executable, "-m", "fastlstm", "--steps", "2", "--sample-len", "10",
               *TINY_MODEL]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert any(line.strip().startswith("fastlstm.LSTM") and "tokens/s" in line for line in lines)
    assert any(line.strip().startswith("torch.nn.LSTM") and "tokens/s" in line for line in lines)
    assert "ratio fastlstm / nn.LSTM" in completed.stdout
