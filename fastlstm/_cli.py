"""argparse defaults and value types shared by the command-line tools (demo, bench)."""
import argparse

import torch


def default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value
