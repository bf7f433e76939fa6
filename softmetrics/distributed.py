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
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_gather_cat", "all_reduce_sum", "is_distributed"]


def is_distributed() -> bool:
    """True inside an initialised `torch.distributed` process group."""
    return dist.is_available() and dist.is_initialized()


def _group(process_group):
    return dist.group.WORLD if process_group is None else process_group


def all_reduce_sum(tensor: Tensor, process_group=None) -> Tensor:
    """The sum of `tensor` over the processes of `process_group`, with gradient."""
    if not is_distributed():
        return tensor
    import torch.distributed.nn.functional as dist_fn

    with warnings.catch_warnings():
        # deprecated in favour of the private functional collectives in recent torch; it is
        # the public autograd-aware all-reduce across the versions softmetrics supports
        warnings.simplefilter("ignore", FutureWarning)
        return dist_fn.all_reduce(tensor, op=dist.ReduceOp.SUM, group=_group(process_group))


def all_gather_cat(tensor: Tensor, process_group=None, dim: int = 0) -> Tensor:
    """`tensor` of every process concatenated along `dim` (in rank order), with gradient.

    Every process must pass a tensor of the same shape.
    """
    if not is_distributed():
        return tensor
    import torch.distributed.nn.functional as dist_fn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        parts = dist_fn.all_gather(tensor, group=_group(process_group))
    return torch.cat(parts, dim=dim)
