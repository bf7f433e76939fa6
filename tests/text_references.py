"""Independent references for the BLEU family: sacrebleu and explicit Python loops.

Token ids become space-joined strings for sacrebleu (`tokenize="none"`); a reference that
is all padding is passed as missing (`None`) unless every reference of the sentence is
empty, in which case one empty string stands for them.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import torch
from sacrebleu.metrics import BLEU

logging.getLogger("sacrebleu").setLevel(logging.ERROR)


def to_words(ids: torch.Tensor, pad_id: int) -> str:
    """The ids before the first `pad_id`, space-joined."""
    out = []
    for i in ids.tolist():
        if i == pad_id:
            break
        out.append(str(i))
    return " ".join(out)


def _refs(ref: torch.Tensor, pad_id: int) -> list[str | None]:
    """The references of one sentence, `(R, T')`, with sacrebleu's missing ones."""
    words = [to_words(r, pad_id) for r in ref]
    if not any(words):
        return [""] + [None] * (len(words) - 1)
    return [w if w else None for w in words]


def _metric(smooth: str, smooth_value: float | None, max_order: int,
            effective_order: bool) -> BLEU:
    return BLEU(tokenize="none", smooth_method=smooth, smooth_value=smooth_value,
                max_ngram_order=max_order, effective_order=effective_order)


def sacrebleu_sentence(hyp: torch.Tensor, ref: torch.Tensor, *, pad_id: int = 0,
                       smooth: str = "exp", smooth_value: float | None = None,
                       max_order: int = 4, effective_order: bool = True) -> list[float]:
    """sacrebleu's sentence BLEU / 100 of each row; `ref` is (B, R, T')."""
    metric = _metric(smooth, smooth_value, max_order, effective_order)
    out = []
    for h, r in zip(hyp, ref, strict=True):
        refs = [w for w in _refs(r, pad_id) if w is not None]
        out.append(metric.sentence_score(to_words(h, pad_id), refs).score / 100)
    return out


def sacrebleu_corpus(hyp: torch.Tensor, ref: torch.Tensor, *, pad_id: int = 0,
                     smooth: str = "exp", smooth_value: float | None = None,
                     max_order: int = 4, effective_order: bool = False) -> float:
    """sacrebleu's corpus BLEU / 100; `ref` is (B, R, T') (R reference streams)."""
    metric = _metric(smooth, smooth_value, max_order, effective_order)
    hyps = [to_words(h, pad_id) for h in hyp]
    per_sentence = [_refs(r, pad_id) for r in ref]
    streams = [list(s) for s in zip(*per_sentence, strict=True)]
    return metric.corpus_score(hyps, streams).score / 100


def soft_matches_loop(probs: torch.Tensor, ref: torch.Tensor, hyp_len: int, pad_id: int,
                      max_order: int) -> list[float]:
    """Soft clipped matches of one sentence by explicit loops.

    `probs` (T, V) are the per-position distributions, `ref` (R, T') the references. For
    every distinct reference n-gram g: min(sum_t prod_i probs[t + i, g_i], max_k c_k(g)).
    """
    refs = [[int(x) for x in r.tolist()] for r in ref]
    refs = [r[:r.index(pad_id)] if pad_id in r else r for r in refs]
    out = []
    for n in range(1, max_order + 1):
        caps: Counter = Counter()
        for r in refs:
            counts = Counter(tuple(r[j:j + n]) for j in range(len(r) - n + 1))
            for g, c in counts.items():
                caps[g] = max(caps[g], c)
        total = 0.0
        for g, cap in caps.items():
            soft = 0.0
            for t in range(hyp_len - n + 1):
                prod = 1.0
                for i in range(n):
                    tok = g[i]
                    prod *= float(probs[t + i, tok]) if 0 <= tok < probs.shape[1] else 0.0
                soft += prod
            total += min(soft, cap)
        out.append(total)
    return out


def bleu_from_stats(matches: list[float], totals: list[int], hyp_len: int, ref_len: int,
                    *, max_order: int) -> float:
    """Unsmoothed-in-practice BLEU with "exp" smoothing and effective order, written out
    from the definition (all matches assumed > 0 where totals > 0)."""
    used = [n for n in range(max_order) if totals[n] > 0]
    logs = [math.log(matches[n] / totals[n]) for n in used]
    bp = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(sum(logs) / len(used))


def soft_bleu_from_stats(matches: list[float], totals: list[int], hyp_len: int, ref_len: int,
                         *, smooth: str, smooth_value: float | None,
                         effective_order: bool) -> float:
    """BLEU of (soft) statistics, order by order as sacrebleu's `compute_bleu` reads them,
    with its tests "no match" made continuous as documented: `z(m) = max(1 - m, 0)`, a
    precision `(m_n + z(m_n) s_n) / t_n` ("floor": `s_n = smooth_value`; "exp": `s_n =
    2^-(z(m_1) + ... + z(m_n))`), and the score times `min(m_1, 1)`."""
    order = len(matches)
    value = {"floor": 0.1, "add-k": 1.0}.get(smooth, 0.0) if smooth_value is None \
        else smooth_value
    m = [min(a, float(t)) for a, t in zip(matches, totals, strict=True)]
    t = [float(x) for x in totals]
    first = m[0]
    if smooth == "add-k":
        m = [m[0]] + [a + value for a in m[1:]]
        t = [t[0]] + [x + value for x in t[1:]]
    logs, running = [], 0.0
    for n in range(order):
        if t[n] <= 0:
            if not effective_order:
                return 0.0
            break
        z = max(1.0 - m[n], 0.0)
        running += z
        if smooth == "floor":
            p = (m[n] + z * value) / t[n]
        elif smooth == "exp":
            p = (m[n] + z * 2.0 ** -running) / t[n]
        else:
            p = m[n] / t[n]
        if p <= 0:
            return 0.0
        logs.append(math.log(p))
    if first <= 0 or not logs:
        return 0.0
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0)
    return min(first, 1.0) * bp * math.exp(sum(logs) / (len(logs) if effective_order
                                                            else order))
