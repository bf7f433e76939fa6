"""Plot how soft F1 approaches the exact F1 as the temperature falls (docs: Concepts).

    python benchmarks/temperature.py           # writes results/temperature.png
    python benchmarks/temperature.py --record  # the docs' figure, docs/benchmarks/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_output_arguments, output_dir, wrote

from softmetrics.functional import soft_accuracy, soft_f1_score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(parser)
    out = output_dir(parser.parse_args(argv))
    g = torch.Generator().manual_seed(0)
    n, c = 2000, 5
    # imbalanced classes, so that macro-F1 and accuracy differ
    prior = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])
    target = torch.multinomial(prior, n, replacement=True, generator=g)
    # a mediocre classifier: the true class gets a boost of 1.5 over N(0, 1) noise
    logits = torch.randn(n, c, generator=g, dtype=torch.float64)
    logits[torch.arange(n), target] += 1.5
    temperatures = np.logspace(-3, 1, 41)
    kw = dict(task="multiclass", num_classes=c)
    soft_f1 = [soft_f1_score(logits, target, temperature=t, **kw).item() for t in temperatures]
    soft_acc = [soft_accuracy(logits, target, temperature=t, **kw).item() for t in temperatures]
    hard_f1 = soft_f1_score(logits, target, temperature=0, **kw).item()
    hard_acc = soft_accuracy(logits, target, temperature=0, **kw).item()

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
    z = np.linspace(-3, 3, 601)
    ax0.step(z, (z > 0).astype(float), where="mid", color="k", label="hard: $z > 0$")
    for t in (1.0, 0.3, 0.1):
        ax0.plot(z, 1 / (1 + np.exp(-z / t)), label=rf"soft: $\sigma(z/{t:g})$")
    ax0.set_xlabel("score margin $z$")
    ax0.set_ylabel("decision")
    ax0.set_title("The decision, hard and soft")
    ax0.legend(fontsize=8)
    ax1.semilogx(temperatures, soft_f1, label="soft macro-F1")
    ax1.axhline(hard_f1, color="C0", ls="--", lw=1, label=f"exact macro-F1 = {hard_f1:.3f}")
    ax1.semilogx(temperatures, soft_acc, label="soft accuracy")
    ax1.axhline(hard_acc, color="C1", ls="--", lw=1, label=f"exact accuracy = {hard_acc:.3f}")
    ax1.set_xlabel("temperature")
    ax1.set_title(f"Soft -> exact as temperature -> 0 (N={n}, C={c})")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "temperature.png", dpi=110)
    for t, f in zip(temperatures[::10], soft_f1[::10], strict=True):
        print(f"temperature {t:8.4f}: soft macro-F1 {f:.4f} (exact {hard_f1:.4f})")
    low = temperatures <= 0.05 + 1e-12
    gap = max(np.abs(np.array(soft_f1)[low] - hard_f1).max(),
              np.abs(np.array(soft_acc)[low] - hard_acc).max())
    print(f"largest |soft - exact| of macro-F1 and accuracy at temperature <= 0.05: {gap:.4f}")
    wrote(out, ["temperature.png"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
