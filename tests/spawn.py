"""Spawning gloo worker processes for the multi-process tests.

A test passes `compute(rank, world) -> dict` (a module-level function, so that it can be
sent to the children); `spawn` runs it in `world` fresh processes inside a gloo process
group and returns every rank's dict, in rank order. The rendezvous, the result files and
the shut-down live here, in one place, because the retry rule below depends on them.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _run(rank: int, world: int, out: str, compute) -> None:
    # a file store (no port to race for) and the loopback interface for gloo's pairs
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank,
                            world_size=world)
    try:
        torch.save(compute(rank, world), Path(out) / f"rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip interpreter teardown, where gloo's threads can abort the process


def spawn(compute, world: int, attempts: int = 3) -> list[dict]:
    """Run `compute(rank, world)` in `world` processes; return their results in rank order.

    On this kind of 2-core machine a gloo child now and then aborts ("terminate called
    without an active exception", SIGABRT) while its process group starts or shuts down.
    Each child writes `rank<r>.pt` when its computation is done: an abort after every
    rank wrote its file is shut-down noise and is ignored; an abort before any rank wrote
    one is retried, at most `attempts - 1` times; anything else is raised as it is.
    """
    with tempfile.TemporaryDirectory() as out:
        for attempt in range(attempts):
            try:
                mp.spawn(_run, args=(world, out, compute), nprocs=world, join=True)
                break
            except mp.ProcessExitedException as error:
                written = len(list(Path(out).glob("rank*")))
                if error.signal_name != signal.Signals.SIGABRT.name:
                    raise
                if written == world:
                    break
                if written or attempt == attempts - 1:
                    raise
                for leftover in Path(out).iterdir():
                    leftover.unlink()
        return [torch.load(Path(out) / f"rank{r}.pt", weights_only=False)
                for r in range(world)]
