"""`examples/lightning_module.py`, the code of the PyTorch Lightning page, trains and logs
the exact F1 of its loss's `.metric()` equal to torchmetrics' on the same samples: in one
process, and under DDP on two CPU processes, where that equality needs the loss to sum
its counts over the processes (`sync_dist=True`). Skipped where Lightning is missing
(`pip install -e ".[lightning]"`)."""

from __future__ import annotations

import re

import pytest

from .test_examples import NUMBER, run_in_process, run_script

pytest.importorskip("lightning")
pytest.importorskip("torchmetrics")

LINE = (rf"{{when}} \({{processes}}\): validation macro F1 {NUMBER} \(\.metric\(\)\), "
        rf"{NUMBER} \(torchmetrics\)")


def check(out: str, processes: str) -> tuple[float, float]:
    """The F1 before and after training, each equal in softmetrics and torchmetrics."""
    found = []
    for when in ("before training", r"after \d+ epochs"):
        line = re.search(LINE.format(when=when, processes=processes), out)
        assert line, out
        ours, theirs = (float(v) for v in line.groups())
        assert ours == theirs, line.group(0)
        found.append(ours)
    return found[0], found[1]


def test_lightning_module_tiny(capsys) -> None:
    before, after = check(run_in_process("lightning_module.py", "--tiny", capsys=capsys),
                          "1 process")
    assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0


@pytest.mark.slow
def test_lightning_module_ddp_on_two_cpu_processes() -> None:
    """Two gloo processes, each with half of every batch: the logged `.metric()` is the F1
    of the global validation set, as torchmetrics' synchronised value is."""
    before, after = check(run_script("lightning_module.py", "--tiny", "--devices", "2",
                                     timeout=600), "2 processes")
    assert after > before


@pytest.mark.slow
def test_lightning_module_learns() -> None:
    before, after = check(run_script("lightning_module.py"), "1 process")
    assert after > max(0.8, before + 0.4)
