"""Autograd-aware reductions across processes, on PyTorch's own `torch.distributed`.

A set-level metric (F-beta, IoU, MCC, AUROC, AP) is not a mean over samples: under
data-parallel training each process sees a slice of the batch, and the metric of a slice
is a different, biased objective. Summing the *statistics* across processes before the
formula makes every process optimise the metric of the whole global batch.

Both helpers are differentiable. Their backward is itself a sum across processes, so the
gradient that reaches a process's inputs is `world_size` times the gradient a single
process would compute on the concatenated batch; `DistributedDataParallel` averages
parameter gradients over the `world_size` processes, which gives back exactly the
single-process gradient. Outside an initialised process group both return their input.

`Ring` is not differentiable: it passes tensors between neighbouring processes
(point-to-point) for an autograd Function that passes their gradients back itself, as the
SigLIP loss does with its blocks of keys.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "Ring",
    "all_gather_cat",
    "all_gather_cat_uneven",
    "all_gather_rows",
    "all_reduce_sum",
    "all_reduce_sums",
    "gather_sizes",
    "get_rank",
    "is_distributed",
]


def is_distributed() -> bool:
    """True inside an initialised `torch.distributed` process group."""
    return dist.is_available() and dist.is_initialized()


def _group(process_group: dist.ProcessGroup | None) -> dist.ProcessGroup | None:
    return dist.group.WORLD if process_group is None else process_group


def all_reduce_sum(tensor: Tensor, process_group: dist.ProcessGroup | None = None) -> Tensor:
    """The sum of `tensor` over the processes of `process_group`, with gradient."""
    if not is_distributed():
        return tensor
    import torch.distributed.nn.functional as dist_fn

    with warnings.catch_warnings():
        # deprecated in favour of the private functional collectives in recent torch; it is
        # the public autograd-aware all-reduce across the versions softmetrics supports
        warnings.simplefilter("ignore", FutureWarning)
        return cast(Tensor, dist_fn.all_reduce(tensor, op=dist.ReduceOp.SUM,
                                               group=_group(process_group)))


def all_reduce_sums(tensors: Sequence[Tensor],
                    process_group: dist.ProcessGroup | None = None) -> list[Tensor]:
    """`all_reduce_sum` of several tensors in one collective, with gradient: flattened
    into one buffer (in their promoted dtype), summed, split back into their shapes and
    dtypes. Each collective is a round trip between the processes."""
    if not is_distributed():
        return list(tensors)
    summed = all_reduce_sum(torch.cat([t.reshape(-1) for t in tensors]), process_group)
    parts = summed.split([t.numel() for t in tensors])
    return [part.view(t.shape).to(t.dtype) for part, t in zip(parts, tensors, strict=True)]


def all_gather_cat(tensor: Tensor, process_group: dist.ProcessGroup | None = None,
                   dim: int = 0) -> Tensor:
    """`tensor` of every process concatenated along `dim` (in rank order), with gradient.

    Every process must pass a tensor of the same shape.
    """
    if not is_distributed():
        return tensor
    return torch.cat(_AllGather.apply(tensor, _group(process_group)), dim=dim)


class _AllGather(torch.autograd.Function):
    """All-gather with gradient: forward, the tensor of every process of `group` (one per
    rank of the group, in its order); backward, the gradient of every gathered part
    summed over the processes (an all-reduce, itself with gradient when a graph is being
    built), of which each process keeps its own part.

    `torch.distributed.nn.functional.all_gather` computes the backward with gloo's
    all-to-all, which takes the group's ranks for global ones: in a sub-group whose ranks
    are not the global ranks (ranks 0 and 2 of 3) it raised. An all-reduce names no rank,
    and moves the group's gradients once more than a reduce-scatter (which gloo lacks).
    """

    apply: ClassVar[Callable[..., tuple[Tensor, ...]]]

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: dist.ProcessGroup | None
                ) -> tuple[Tensor, ...]:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        tensor = tensor.contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, tensor, group=group)
        return tuple(parts)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor, None]:
        full = torch.stack(grads)  # contiguous, whatever the layout of each gradient
        if torch.is_grad_enabled():  # a graph being built: the all-reduce with gradient
            return all_reduce_sum(full, ctx.group)[ctx.rank], None
        dist.all_reduce(full, op=dist.ReduceOp.SUM, group=ctx.group)
        return full[ctx.rank], None


def get_rank(process_group: dist.ProcessGroup | None = None) -> int:
    """The rank of this process in `process_group` (0 outside a process group)."""
    if not is_distributed():
        return 0
    return dist.get_rank(group=_group(process_group))


def _handles_cpu_tensors(group: dist.ProcessGroup | None) -> bool:
    """True when the backend of `group` runs collectives on CPU tensors: "gloo", "mpi",
    or a device map such as "cpu:gloo,cuda:nccl" with a "cpu" entry."""
    backend = str(dist.get_backend(group)).lower()
    if ":" in backend:
        return any(pair.split(":")[0].strip() == "cpu" for pair in backend.split(","))
    capability = getattr(dist.Backend, "backend_capability", {})
    return "cpu" in capability.get(backend, ("cpu",) if backend in ("gloo", "mpi") else ())


def gather_sizes(size: int, *, device: torch.device | str | None = None,
                 process_group: dist.ProcessGroup | None = None) -> list[int]:
    """The `size` of every process of `process_group`, in rank order (`[size]` outside).

    One small all-gather; call it once per step, not per tensor. The sizes are needed on
    the host (to pad for the gather and to drop the padding), so where the backend handles
    CPU tensors (gloo, or a group initialised with a device map such as
    `"cpu:gloo,cuda:nccl"`) they are exchanged in host memory, which never waits for the
    device. Otherwise (NCCL alone) they are exchanged on `device` (the device of the data)
    and read back: one host synchronisation per call, the only one of the gathering
    helpers.
    """
    if not is_distributed():
        return [int(size)]
    group = _group(process_group)
    on = torch.device("cpu") if _handles_cpu_tensors(group) else device
    # filled where it lives: a tensor built from host data would be copied and waited for
    local = torch.full((1,), int(size), dtype=torch.long, device=on)
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size(group=group))]
    dist.all_gather(parts, local, group=group)
    return torch.cat(parts).tolist()


def all_gather_cat_uneven(tensor: Tensor, sizes: list[int],
                          process_group: dist.ProcessGroup | None = None) -> Tensor:
    """`tensor` of every process concatenated along dim 0, with gradient, for batches of
    different sizes.

    `sizes` are the dim-0 sizes of every process in rank order (from `gather_sizes`); the
    other dimensions must agree. Each tensor is zero-padded to the largest size, gathered
    with `all_gather_cat`, and the padding is dropped again, so the result holds exactly
    the `sum(sizes)` real rows (and the padding receives no gradient).
    """
    if not is_distributed():
        return tensor
    longest = max(sizes)
    if min(sizes) == longest:
        return all_gather_cat(tensor, process_group)
    pad = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
    gathered = all_gather_cat(torch.cat([tensor, pad]), process_group)
    # one slice per process (a loop over ranks, not samples)
    return torch.cat([gathered[r * longest:r * longest + n] for r, n in enumerate(sizes)])


def all_gather_rows(*tensors: Tensor, process_group: dist.ProcessGroup | None = None
                    ) -> tuple[tuple[Tensor, ...], list[int]]:
    """The rows of every process, for tensors that share their dim-0 size within a process
    (scores and targets, queries and keys): each tensor concatenated over the processes in
    rank order, with gradient (`all_gather_cat_uneven`), and the dim-0 size of every
    process (`gather_sizes`). Outside a process group: the tensors and `[size]`.
    """
    first = tensors[0]
    sizes = gather_sizes(first.shape[0], device=first.device, process_group=process_group)
    return tuple(all_gather_cat_uneven(t, sizes, process_group) for t in tensors), sizes


def _p2p_device(device: torch.device, group: dist.ProcessGroup | None) -> torch.device:
    """Where point-to-point messages of tensors on `device` travel: `device` itself where
    the backend sends its tensors (NCCL for CUDA, a device map with an entry for its
    type), else host memory (gloo and MPI send and receive CPU tensors only)."""
    if device.type == "cpu":
        return device
    backend = str(dist.get_backend(group)).lower()
    if ":" in backend:
        types = {pair.split(":")[0].strip() for pair in backend.split(",")}
        return device if device.type in types else torch.device("cpu")
    return torch.device("cpu") if backend in ("gloo", "mpi") else device


class Ring:
    """The ring of the processes of `process_group` in rank order, seen from this process:
    each process sends to the next rank and receives from the previous one (the last
    rank's next is rank 0). `shift` posts the messages of one step without waiting, so
    that computation can run while they travel.

    Tensors on `device` travel on it where the backend sends device tensors (NCCL), else
    through host memory (gloo, MPI), which copies them to the host and back.
    """

    def __init__(self, device: torch.device,
                 process_group: dist.ProcessGroup | None = None) -> None:
        # the world group is set once a process group is initialised
        group = cast(dist.ProcessGroup, _group(process_group))
        self.group = group
        self.rank = dist.get_rank(group=group)
        self.world = dist.get_world_size(group=group)
        # point-to-point calls name global ranks
        self._next = dist.get_global_rank(group, (self.rank + 1) % self.world)
        self._prev = dist.get_global_rank(group, (self.rank - 1) % self.world)
        self.device = device
        self._on = _p2p_device(device, group)

    def shift(self, send: list[Tensor], receive: list[tuple[tuple[int, ...], torch.dtype]],
              *, tag: int = 0) -> Callable[[], list[Tensor]]:
        """Post the sending of each tensor of `send` to the next process and the receiving
        of tensors of the given `(shape, dtype)` from the previous one (the `i`-th received
        is the previous process's `i`-th sent); return the function that waits for all of
        them and returns the received tensors on `device`. Shifts in flight at the same
        time take different `tag`s (`tag + i` for the `i`-th tensor)."""
        outgoing = [t.to(self._on).contiguous() for t in send]
        incoming = [torch.empty(shape, dtype=dtype, device=self._on) for shape, dtype in receive]
        # a tag per message keeps the messages in flight apart on backends that match by
        # tag (gloo); backends that match in posting order (NCCL) get the same order
        ops = [dist.P2POp(dist.isend, t, self._next, self.group, tag + i)
               for i, t in enumerate(outgoing)]
        ops += [dist.P2POp(dist.irecv, t, self._prev, self.group, tag + i)
                for i, t in enumerate(incoming)]
        works = dist.batch_isend_irecv(ops) if ops else []

        def wait() -> list[Tensor]:
            for work in works:
                work.wait()
            del outgoing[:]  # the sent buffers are free once the messages are out
            return [t.to(self.device) for t in incoming]

        return wait
