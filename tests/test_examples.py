"""The scripts in `examples/` run and report what their docstrings promise.

Each script's `--tiny` mode runs here as `__main__` in this process (a fresh interpreter
per script would spend most of its time importing torch again); the slow tests run the
default settings as a user would, in a subprocess, and check that the model learned.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NUMBER = r"([0-9]+\.[0-9]+)"


def run_in_process(script: str, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `examples/<script>` as `__main__` with the given arguments; its stdout.

    On one thread: the tiny models gain nothing from a second one, and on a loaded
    machine the threads of one operation wait for each other."""
    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = [str(EXAMPLES / script), *args]
    torch.set_num_threads(1)
    try:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
    return capsys.readouterr().out


def run_script(script: str, *args: str, timeout: float = 1200) -> str:
    """Run `examples/<script>` in a fresh interpreter, with this checkout's softmetrics
    first on the path; its stdout (a failure shows stderr). One thread per process unless
    OMP_NUM_THREADS says otherwise: the settings of the outputs on the Examples page."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.setdefault("OMP_NUM_THREADS", "1")
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def values(pattern: str, out: str) -> list[float]:
    """The numbers of the first line of `out` matching `pattern` (groups of NUMBER)."""
    found = re.search(pattern, out)
    assert found, f"no line matches {pattern!r} in:\n{out}"
    numbers = [float(v) for v in found.groups()]
    assert all(0.0 <= v <= 1.0 for v in numbers), numbers
    return numbers


def segmentation(out: str) -> tuple[float, float]:
    before, _ = values(rf"before training: mean IoU {NUMBER}, Dice {NUMBER} \(", out)
    after, _ = values(rf"after \d+ steps of \d+ images: mean IoU {NUMBER}, Dice {NUMBER} \(",
                      out)
    void = re.search(r"images of \d+x\d+ pixels, ([0-9.]+)% of them void", out)
    assert void and float(void.group(1)) > 0, out  # the masks hold void pixels
    return before, after


def quickstart(out: str) -> tuple[float, float]:
    before, _ = values(rf"before training: mean IoU {NUMBER}, Dice {NUMBER}\n", out)
    after, _ = values(rf"after \d+ steps: mean IoU {NUMBER}, Dice {NUMBER}\n", out)
    return before, after


def multilabel(out: str) -> tuple[float, float, float]:
    (before,) = values(rf"before training: macro F1 {NUMBER}\n", out)
    (f1,) = values(rf"with SoftF1Loss: macro F1 {NUMBER} \(per label \[", out)
    (bce,) = values(rf"with binary cross-entropy: macro F1 {NUMBER} \(per label \[", out)
    return before, f1, bce


def clip(out: str) -> tuple[float, float, float, float]:
    pattern = rf"top-1 retrieval accuracy {NUMBER} among \d+ pairs \(chance {NUMBER}\), " \
              rf"temperature {NUMBER}"
    before, chance, t0 = values("before training: " + pattern, out)
    after, _, t1 = values(r"after \d+ steps: " + pattern, out)
    assert t0 == 0.07
    return before, after, chance, t1


def mrt(out: str) -> tuple[float, float, float]:
    (pre,) = values(rf"cross-entropy pretraining, \d+ steps: test BLEU {NUMBER}\n", out)
    (risk,) = values(rf"steps of minimum risk training: test BLEU {NUMBER}\n", out)
    (ce,) = values(rf"steps of cross-entropy only: test BLEU {NUMBER}\n", out)
    return pre, risk, ce


def test_segmentation_tiny(capsys) -> None:
    segmentation(run_in_process("segmentation.py", "--tiny", capsys=capsys))


def test_segmentation_quickstart_tiny(capsys) -> None:
    quickstart(run_in_process("segmentation_quickstart.py", "--tiny", capsys=capsys))


def test_multilabel_f1_tiny(capsys) -> None:
    multilabel(run_in_process("multilabel_f1.py", "--tiny", capsys=capsys))


def test_clip_infonce_tiny_learns_its_temperature(capsys) -> None:
    """The temperature moves: the loss's parameter is in the optimizer."""
    _, _, _, temperature = clip(run_in_process("clip_infonce.py", "--tiny", capsys=capsys))
    assert temperature != 0.07


def test_mrt_seq2seq_tiny(capsys) -> None:
    mrt(run_in_process("mrt_seq2seq.py", "--tiny", capsys=capsys))


@pytest.mark.slow
def test_segmentation_learns() -> None:
    before, after = segmentation(run_script("segmentation.py"))
    assert after > max(0.8, before + 0.5)


@pytest.mark.slow
def test_segmentation_quickstart_learns() -> None:
    before, after = quickstart(run_script("segmentation_quickstart.py"))
    assert after > max(0.8, before + 0.5)


@pytest.mark.slow
def test_multilabel_f1_learns() -> None:
    before, f1, bce = multilabel(run_script("multilabel_f1.py"))
    assert f1 > before + 0.2 and bce > before


@pytest.mark.slow
def test_clip_infonce_learns() -> None:
    before, after, chance, _ = clip(run_script("clip_infonce.py"))
    assert after > max(0.5, 100 * chance, before + 0.4)


@pytest.mark.slow
def test_mrt_seq2seq_learns() -> None:
    pre, risk, ce = mrt(run_script("mrt_seq2seq.py"))
    assert risk > pre and ce > pre


def test_every_example_is_on_the_examples_page() -> None:
    page = (ROOT / "docs" / "examples.md").read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert f"examples/{script.name}" in page, script.name


def test_the_code_of_the_segmentation_page_runs() -> None:
    """The Segmentation page's own code blocks (those not included from an example) run,
    in order, in one namespace; the included one is `segmentation_quickstart.py`."""
    page = (ROOT / "docs" / "segmentation.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    own = [b for b in blocks if "--8<--" not in b]
    assert own and len(own) < len(blocks)
    namespace: dict[str, object] = {}
    for block in own:
        exec(compile(block, "docs/segmentation.md", "exec"), namespace)
