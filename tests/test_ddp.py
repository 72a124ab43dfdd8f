"""fastlstm.LSTM trained under DistributedDataParallel: two gloo processes
on the CPU, each on its own batches; the replicas stay equal, and equal to
one process stepping with the two batches' averaged gradient (what DDP's
all-reduce computes)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import fastlstm

WORLD, STEPS = 2, 4
CONFIG = dict(input_size=3, hidden_size=6, num_layers=2, bidirectional=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_model():
    torch.manual_seed(0)
    return fastlstm.LSTM(**CONFIG)


def batch(step, rank):
    gen = torch.Generator().manual_seed(100 * step + rank)
    return torch.randn(5, 2, CONFIG["input_size"], generator=gen)


def loss_of(model, x):
    output, (h_n, c_n) = model(x)
    return output.pow(2).mean() + h_n.sum() + 0.5 * c_n.sum()


def train_replica(rank, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        model = DistributedDataParallel(new_model())
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(STEPS):
            optimizer.zero_grad()
            loss_of(model, batch(step, rank)).backward()
            optimizer.step()
        torch.save(model.module.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def train_alone():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(STEPS):
        optimizer.zero_grad()
        for rank in range(WORLD):
            (loss_of(model, batch(step, rank)) / WORLD).backward()
        optimizer.step()
    return model.state_dict()


def test_ddp_replicas_stay_equal_to_each_other_and_to_one_process(tmp_path):
    mp.spawn(train_replica, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    replicas = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    initial = new_model().state_dict()
    alone = train_alone()
    for name, value in replicas[0].items():
        assert torch.equal(replicas[1][name], value), f"{name} differs between replicas"
        assert not torch.equal(value, initial[name]), f"{name} did not train"
        torch.testing.assert_close(value, alone[name], atol=1e-6, rtol=1e-5,
                                   msg=lambda m, name=name: f"{name}: {m}")
