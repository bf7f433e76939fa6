"""Spawning gloo worker processes for the multi-process tests."""

from __future__ import annotations

import signal
from pathlib import Path

import torch.multiprocessing as mp


def spawn(worker, world: int, out: str, attempts: int = 3) -> None:
    """Run `worker(rank, world, out)` in `world` fresh processes and wait for them.

    On this kind of 2-core machine a gloo child now and then aborts ("terminate called
    without an active exception", SIGABRT) while its process group starts or shuts down.
    Each worker writes `rank<r>.pt` when its computation is done: an abort after every
    rank wrote its file is shut-down noise and is ignored; an abort before any rank wrote
    one is retried, at most `attempts - 1` times; anything else is raised as it is.
    """
    for attempt in range(attempts):
        try:
            mp.spawn(worker, args=(world, out), nprocs=world, join=True)
            return
        except mp.ProcessExitedException as error:
            written = len(list(Path(out).glob("rank*")))
            if error.signal_name != signal.Signals.SIGABRT.name:
                raise
            if written == world:
                return
            if written or attempt == attempts - 1:
                raise
            for leftover in Path(out).iterdir():
                leftover.unlink()
