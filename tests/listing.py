"""The ranking tiles' listing of the positives, switched on or off on whatever device a
test runs: `_tuning.RANKING_CPU_LISTS_POSITIVES` on the CPU, and elsewhere
`_tuning.RANKING_DEVICE_LISTS_POSITIVES` (off by default: a synchronisation there)."""

from __future__ import annotations

import pytest

from softmetrics import _tuning


def list_positives(mp: pytest.MonkeyPatch, on: bool) -> None:
    """List the positives (`on`) or compute every row and mask, on every device."""
    mp.setattr(_tuning, "RANKING_CPU_LISTS_POSITIVES", on)
    mp.setattr(_tuning, "RANKING_DEVICE_LISTS_POSITIVES", on)
