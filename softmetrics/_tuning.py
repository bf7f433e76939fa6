"""Tuning constants, in one place: block and tile sizes of the work done in pieces.

Each size trades memory against the number of kernel calls. On the CPU a block should
stay in cache between the passes over it; on a GPU every piece costs kernel launches
whatever its size, so pieces there are as large as memory allows. The classification
constants measured on the CPU (the padding of narrow softmax rows, the block size, and the
size up to which the counts take the plain path) rest on measurements that
`benchmarks/speed.py` records (the documentation's Speed page), and the ranking CPU tile on
those of `benchmarks/ranking.py` (its benchmark page); the other sizes are reasoned from
cache and memory sizes, and the values for GPUs from kernel-launch costs: none of those
has a recorded measurement, and none of this has been measured on a GPU. Code reads these as
attributes of this module at call time (`_tuning.CPU_BLOCK_ENTRIES`), so a test can change
them.
"""

from __future__ import annotations

import torch

__all__ = [
    "BLEU_CPU_TILE_ELEMENTS",
    "CPU_BLOCK_ENTRIES",
    "CPU_SOFTMAX_MAX_PADDING",
    "CPU_SOFTMAX_MIN_WIDTH",
    "CPU_SOFTMAX_PAD_ROWS",
    "DEVICE_BLOCK_ENTRIES",
    "INFONCE_AUTO_TILE_ELEMENTS",
    "INFONCE_CPU_TILE_ELEMENTS",
    "INFONCE_DEVICE_TILE_ELEMENTS",
    "INFONCE_MIN_CHUNK",
    "RANKING_CPU_LISTS_POSITIVES",
    "RANKING_DEVICE_LISTS_POSITIVES",
    "RANKING_DEVICE_TILE_ELEMENTS",
    "RANKING_TILE_ELEMENTS",
    "SMALL_COUNTS_ENTRIES",
    "cpu_softmax_width",
    "infonce_tile_elements",
    "ranking_tile_elements",
    "rows_per_block",
]

# Classification, the softmax counts. ATen's CPU row softmax vectorises float32 rows of at
# least one vector, 16 lanes with AVX-512 and 8 with AVX2; a narrower row takes a slow
# loop whose cost grows with its width (4096 rows of 10 classes with AVX-512: 651 us,
# against 64 us at 16 columns). Such rows are padded with -inf columns up to this width
# (None: one vector of this CPU's float32 kernels, `cpu_softmax_width`; 0: never), when
# the padding at most multiplies the row by CPU_SOFTMAX_MAX_PADDING (two classes padded to
# 16 made every other pass over the probabilities eight times longer: slower) and the
# logits have at least CPU_SOFTMAX_PAD_ROWS rows (below it the copy costs more than the
# loop). float64 rows are not padded: their softmax takes the slow loop at every width.
CPU_SOFTMAX_MIN_WIDTH: int | None = None
CPU_SOFTMAX_MAX_PADDING = 6
CPU_SOFTMAX_PAD_ROWS = 1024
# Entries per block of samples on the CPU (512 KiB of float32: the softmax, its column
# sums and the backward's passes over a block and a temporary of its size stay in a core's
# cache; blocks of 2^19 were 5 to 14% slower on an Intel Xeon and 7% on an AMD EPYC, see
# the Speed page); 0: one block.
CPU_BLOCK_ENTRIES = 1 << 17
# Logits of at most this many entries (256 KiB of float32) take the plain path on every
# device: no blocks, the fewest operations, since there the fixed cost of each operation
# outweighs what blocks save (0: never); its rows are padded as above. Inside torch.compile
# every size takes it, unpadded: the compiler fuses and tiles by itself, and would unroll
# the blocks.
SMALL_COUNTS_ENTRIES = 1 << 16
# Elsewhere the forward is one block, and the backward runs over blocks of at most this
# many entries (64 MiB of float32), so its temporary is never a second (N, C) buffer.
DEVICE_BLOCK_ENTRIES = 1 << 24

# BLEU: tokens per tile of sentences on the CPU, so the sort and the counts stay in cache.
BLEU_CPU_TILE_ELEMENTS = 1 << 17

# Ranking: pairwise elements (columns x rows x samples) per tile when `chunk_size` is not
# given: 2^20 float32 values, 4 MiB per buffer, on the CPU, so that a tile's passes stay
# in cache while a tile still holds several rows of a wide (many-column) input; the sizes
# around it are timed by `benchmarks/ranking.py` (2^18 was faster on narrow inputs but
# slower where a tile held one row of 512 x 512). Elsewhere, where each tile costs a few
# kernel launches whatever its size, 2^24 (64 MiB; a column of 4096 samples).
RANKING_TILE_ELEMENTS = 1 << 20
RANKING_DEVICE_TILE_ELEMENTS = 1 << 24
# Ranking on the CPU, where reading the labels costs no synchronisation: the tiles cover
# only the pairs of a positive and a negative (`NegativesAbove`), not every pair of a
# column (False: every pair, as on other devices, where listing the positives would wait
# for the device). Both passes read it: set it for a whole step.
RANKING_CPU_LISTS_POSITIVES = True
# On other devices listing the positives reads two numbers back from the device in each
# pass (the most positives of a column and the earliest first negative): one host
# synchronisation per pass, which stalls the launch queue and breaks CUDA graphs. Off,
# every pair is computed; on, the pairs of a positive and a negative only. Off until a
# GPU run of `benchmarks/ranking.py` (its "softmetrics, listed" rows) measures the trade.
# As above, both passes read it.
RANKING_DEVICE_LISTS_POSITIVES = False

# InfoNCE: above this many logits (N * P) `chunk_size=None` tiles (2^24 float32: 64 MiB).
INFONCE_AUTO_TILE_ELEMENTS = 1 << 24
# Logits per automatic tile: 16 MiB of float32 on the CPU; 64 MiB elsewhere (4096 x 4096
# when square), since there every tile costs its kernel launches whatever its size.
INFONCE_CPU_TILE_ELEMENTS = 1 << 22
INFONCE_DEVICE_TILE_ELEMENTS = 1 << 24
# Fewest candidates per tile, so that each matrix product stays efficient.
INFONCE_MIN_CHUNK = 64


_vector_width: list[int] = []


def cpu_softmax_width(dtype: torch.dtype) -> int:
    """The width narrow CPU softmax rows of `dtype` are padded to: `CPU_SOFTMAX_MIN_WIDTH`,
    or when that is None the float32 lanes of the kernels ATen runs on this CPU (16 for
    AVX-512, else 8; `ATEN_CPU_CAPABILITY` can lower them) and 0 (no padding) for other
    dtypes."""
    if CPU_SOFTMAX_MIN_WIDTH is not None:
        return CPU_SOFTMAX_MIN_WIDTH
    if dtype != torch.float32:
        return 0
    if not _vector_width:
        capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
        _vector_width.append(16 if "512" in capability else 8)
    return _vector_width[0]


def infonce_tile_elements(device: torch.device) -> int:
    """Logits per automatic InfoNCE tile on `device`."""
    if device.type == "cpu":
        return INFONCE_CPU_TILE_ELEMENTS
    return INFONCE_DEVICE_TILE_ELEMENTS


def ranking_tile_elements(device: torch.device) -> int:
    """Pairwise elements per automatic ranking tile on `device`."""
    if device.type == "cpu":
        return RANKING_TILE_ELEMENTS
    return RANKING_DEVICE_TILE_ELEMENTS


def rows_per_block(rows: int, per_row: int, device: torch.device, cpu_entries: int) -> int:
    """Rows per block for work done block by block: about `cpu_entries` entries per block
    on the CPU, where a block then stays in cache, and all `rows` in one block on other
    devices (one kernel per step); `cpu_entries <= 0` gives one block on the CPU too."""
    if device.type != "cpu" or cpu_entries <= 0:
        return max(1, rows)
    return max(1, cpu_entries // max(per_row, 1))
