"""Spawning gloo worker processes for the multi-process tests, and the two halves of a
data-parallel check.

A test passes `compute(rank, world) -> dict` (a module-level function, so that it can be
sent to the children); `spawn` runs it in `world` fresh processes inside a gloo process
group and returns every rank's dict, in rank order. The rendezvous, the result files and
the shut-down live here, in one place, because the retry rule below depends on them.

Inside `compute`, `sliced_loss` runs a loss on this rank's slice of a global batch
(`rank_rows`: slices of different sizes where the batch is not a multiple of `world`);
back in the test, `assert_equals_whole_batch` compares every rank's result with one
process on the whole batch.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
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
        # written whole, then named: a file `rank<r>.pt` is a finished result
        torch.save(compute(rank, world), Path(out) / f"part{rank}.pt")
        os.replace(Path(out) / f"part{rank}.pt", Path(out) / f"rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip interpreter teardown, where gloo's threads can abort the process


def _join(context: mp.ProcessContext, out: Path, world: int, grace_s: float) -> None:
    """Wait for the children (raising as `mp.spawn` does); once every rank's result is
    written, wait at most `grace_s` seconds more, then kill those still running."""
    written_at = None
    while not context.join(timeout=0.5):
        if len(list(out.glob("rank*"))) < world:
            continue
        written_at = written_at or time.monotonic()
        if time.monotonic() - written_at > grace_s:
            for process in context.processes:
                process.kill()
                process.join()
            return


def spawn(compute, world: int, attempts: int = 3, grace_s: float = 30.0) -> list[dict]:
    """Run `compute(rank, world)` in `world` processes; return their results in rank order.

    On this kind of 2-core machine a gloo child now and then aborts ("terminate called
    without an active exception", SIGABRT) while its process group starts or shuts down.
    Each child writes `rank<r>.pt` when its computation is done: an abort after every
    rank wrote its file is shut-down noise and is ignored; an abort before any rank wrote
    one is retried, at most `attempts - 1` times; anything else is raised as it is.
    With torch 2.1 a child can also hang in `destroy_process_group` (the gloo group's
    destructor holds the GIL while it joins a worker thread that waits for the GIL):
    children still running `grace_s` seconds after every rank wrote its file are killed,
    as shut-down noise too.
    """
    with tempfile.TemporaryDirectory() as out:
        for attempt in range(attempts):
            try:
                _join(mp.start_processes(_run, args=(world, out, compute), nprocs=world,
                                         join=False, start_method="spawn"),
                      Path(out), world, grace_s)
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


def rank_rows(rank: int, world: int, n: int) -> slice:
    """The rows of `rank` in a batch of `n` split over `world` processes in rank order."""
    return slice(rank * n // world, (rank + 1) * n // world)


def sliced_loss(loss_fn, x: torch.Tensor, y: torch.Tensor, rank: int, world: int, *,
                metric: bool = True) -> dict:
    """Run `loss_fn` (a Module loss) on this rank's rows of `(x, y)` and backpropagate:
    the loss, the gradient of the rows, the rows and (with `metric`) `loss_fn.metric`."""
    rows = rank_rows(rank, world, x.shape[0])
    xl = x[rows].clone().requires_grad_()
    loss = loss_fn(xl, y[rows])
    loss.backward()
    result = dict(loss=loss.detach(), grad=xl.grad, rows=rows)
    if metric:
        result["metric"] = loss_fn.metric(xl, y[rows])
    return result


def assert_close_to(got, want, msg: str, atol: float = 1e-6) -> None:
    """`got` equals `want` up to `atol` (no relative tolerance); `msg` names the case."""
    torch.testing.assert_close(got, want, atol=atol, rtol=0, msg=lambda m: f"{msg}: {m}")


def assert_equals_whole_batch(results: list[dict], loss_fn, x: torch.Tensor, y: torch.Tensor,
                              world: int, msg: str, *, metric: bool = True) -> torch.Tensor:
    """Every rank's `sliced_loss` result equals `loss_fn` in one process on the whole batch:
    the same loss, the gradient of its rows times `world` (DistributedDataParallel averages
    parameter gradients over the processes) and (with `metric`) the same exact metric.
    Returns the whole batch's gradient."""
    x = x.detach().clone().requires_grad_()
    loss = loss_fn(x, y)
    (grad,) = torch.autograd.grad(loss, x)
    for result in results:
        assert_close_to(result["loss"], loss.detach(), msg)
        assert_close_to(result["grad"] / world, grad[result["rows"]], msg)
        if metric:
            assert_close_to(result["metric"], loss_fn.metric(x, y), msg, atol=1e-12)
    return grad
