"""Helpers of the multi-process tests: a CPU (gloo) process group per spawned rank."""

import contextlib
import os
import socket
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gloo_group(rank: int, world_size: int, port: int, timeout_s: int = 120):
    """Join a gloo process group on localhost for the block (one thread per rank). A collective
    that never pairs up fails after ``timeout_s`` instead of hanging the test run."""
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def spawn(worker, *args, nprocs: int = 2) -> None:
    """Run ``worker(rank, nprocs, port, *args)`` in ``nprocs`` processes and wait for them."""
    mp.spawn(worker, args=(nprocs, free_port(), *args), nprocs=nprocs, join=True)
