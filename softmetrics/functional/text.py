r"""Text surrogates: BLEU on token ids, exact and batched, soft, and expected.

BLEU (Papineni et al., 2002) is a formula over per-sentence statistics: for each n-gram
order $n = 1, \dots, N$ the clipped matches $m_n$ and the hypothesis n-gram count
$t_n = \max(|h| - n + 1, 0)$, the hypothesis length $|h|$ and the length $r$ of the
reference closest to it,

$$
m_n = \sum_{g \in \text{n-grams}} \min\bigl(c_h(g),\ \max_k c_{r_k}(g)\bigr),\qquad
\mathrm{BLEU} = \mathrm{BP} \cdot \exp\Bigl(\frac{1}{N'}\sum_{n=1}^{N'} \log p_n\Bigr),
\qquad \mathrm{BP} = \min\bigl(1, e^{1 - r / |h|}\bigr),
$$

with $p_n = m_n / t_n$ up to smoothing and $N'$ the (effective) order. Corpus BLEU sums
the statistics over sentences before the formula. Only the n-gram *equality* is discrete;
the three functions here share the statistics and the formula:

- [`bleu_score`][softmetrics.functional.bleu_score]: the exact metric on token ids, equal
  to sacrebleu (`tokenize="none"`) on the whitespace-joined ids;
- [`soft_bleu_score`][softmetrics.functional.soft_bleu_score]: the n-gram equality
  replaced by a product of token probabilities (differentiable in the logits);
- [`expected_bleu`][softmetrics.functional.expected_bleu]: the expected BLEU of sampled
  candidates under a softmax over their sequence log-probabilities (minimum risk
  training; differentiable in the log-probabilities).

The exact statistics are computed without a Python loop over sentences: every n-gram is
packed into one integer key made of the run id of its $(n-1)$-gram prefix and the dense
id of its last token, the keys of a whole batch are sorted once per order, and the counts
of each key per hypothesis and reference come from one scatter-add. The keys stay below
$(B L + 1)(L + 1)$ for $B$ sentences of $L$ tokens (hypothesis and references together),
so they never overflow and no n-gram hash can collide.
"""

from __future__ import annotations

from torch import Tensor

from .._options import PaddingSide, Reduction, Smooth
from ._expected_bleu_core import compute_expected_bleu
from ._text_core import compute_bleu, compute_soft_bleu


def bleu_score(hyp: Tensor, ref: Tensor, *, pad_id: int = 0, max_order: int = 4,
               smooth: Smooth = "exp", smooth_value: float | None = None,
               effective_order: bool | None = None, corpus: bool = False,
               vocab_size: int | None = None, padding_side: PaddingSide = "right",
               validate_args: bool = True) -> Tensor:
    r"""BLEU of token-id hypotheses against one or more references, exact and batched.

    Per sentence, with $c_h(g)$ and $c_{r_k}(g)$ the counts of the n-gram $g$ in the
    hypothesis and in reference $k$, the statistics are

    $$
    m_n = \sum_g \min\bigl(c_h(g), \max_k c_{r_k}(g)\bigr), \qquad
    t_n = \max(|h| - n + 1, 0),
    $$

    the hypothesis length $|h|$ and the reference length $r$ closest to $|h|$ (ties: the
    shorter). Then, with $N'$ the number of orders used,

    $$
    \mathrm{BLEU} = \mathrm{BP}\,\exp\Bigl(\frac{1}{N'} \sum_{n=1}^{N'} \log p_n\Bigr),
    \qquad p_n = \frac{m_n}{t_n},
    $$

    $$
    \mathrm{BP} = \begin{cases} 1 & |h| \ge r \\ e^{1 - r/|h|} & 0 < |h| < r \\ 0 & |h| = 0
    \end{cases}
    $$

    and smoothing (Chen & Cherry, 2014) for orders without a match: `"none"` (the score
    is 0), `"floor"` ($p_n = \epsilon / t_n$, $\epsilon$ = `smooth_value`, default 0.1),
    `"add-k"` ($p_n = (m_n + k)/(t_n + k)$ for $n > 1$, $k$ = `smooth_value`, default 1),
    `"exp"` (the $i$-th order without a match gets $p_n = 1/(2^i t_n)$). With
    `effective_order`, only the orders up to the last with $t_n > 0$ are averaged
    ($N' \le N$); without it, a sentence shorter than $N$ scores 0. No unigram match gives 0.
    `corpus=True` sums $m_n, t_n, |h|, r$ over the sentences before the formula.

    These are exactly sacrebleu's definitions: the result equals
    `sacrebleu.metrics.BLEU(tokenize="none", smooth_method=smooth,
    smooth_value=smooth_value, max_ngram_order=max_order,
    effective_order=effective_order)` on the space-joined ids, divided by 100
    (`sentence_score` per sentence, or `corpus_score`), with an all-padding reference given
    to sacrebleu as a missing one (`None`).

    **Hard limit:** this is the exact metric (no gradient); it is the
    `temperature=0` value of [`soft_bleu_score`][softmetrics.functional.soft_bleu_score]
    at the argmax tokens.

    **Speed:** no Python loop over sentences or references and no host synchronisation
    with `validate_args=False`. Each n-gram is one integer key (the run id of its
    $(n-1)$-gram prefix and the dense id of its last token), the keys of the batch are
    sorted once per order and counted with one scatter-add: $O(B L \log(B L))$ time and
    $O(B L)$ memory for $B$ sentences of $L$ tokens (hypothesis plus references). The first
    order needs an upper bound on the ids for its 1-D sort: `vocab_size`, or the largest id
    read under `validate_args` (not under `torch.compile`, which skips the checks that read
    data); without either it sorts row by row (slower, any ids).

    Args:
        hyp: `(B, T)` integer token ids, padded with `pad_id` (see `padding_side`).
        ref: `(B, T')` references, or `(B, R, T')` for `R >= 1` references per sentence, padded
            the same way. An all-padding reference is a missing one (it never is the
            closest length) unless all of a sentence's references are empty.
        pad_id: the padding id (may be negative).
        max_order: the largest n-gram order $N \ge 1$.
        smooth: `"exp"` (default), `"floor"`, `"add-k"` or `"none"`.
        smooth_value: $\epsilon$ for `"floor"`, $k$ for `"add-k"` (>= 0); None for the
            defaults 0.1 and 1.
        effective_order: average only over the orders with hypothesis n-grams; None means
            True for sentence BLEU and False for corpus BLEU (sacrebleu's defaults for
            `sentence_bleu` and `corpus_bleu`).
        corpus: return the corpus BLEU (statistics summed over the batch).
        vocab_size: an upper bound on the token ids (all ids < `vocab_size`): lets the
            first order use a 1-D sort without reading the data.
        padding_side: where the rows are padded. `"right"` (default): a sentence is the
            ids before the first `pad_id` of its row; everything from there on is ignored
            (so a `pad_id` equal to the end-of-sentence id cuts a sampled row at its end).
            `"left"` (decoder-only generation): the leading pads are skipped, and the
            sentence is the ids from there to the next `pad_id` (or the end), so rows
            padded on both sides work too; a right-padded row reads the same either way,
            except that with `"right"` a row that begins with `pad_id` is empty. A `pad_id`
            inside a sentence ends it in both modes; sacrebleu, given the ids of the
            sentence space-joined, agrees.
        validate_args: check the ids (>= 0 except `pad_id`, < `vocab_size` when given);
            reads the data.

    Returns:
        float64 BLEU in $[0, 1]$ (a `"floor"` `smooth_value` above 1 can lift it above 1,
            as in sacrebleu): shape `(B,)`, or a scalar for `corpus=True`. An empty hypothesis
            scores 0.

    Raises:
        ValueError: for tensors of the wrong rank, a batch-size mismatch, `max_order < 1`,
            an unknown `smooth` or `padding_side`, a negative `smooth_value`, or (with
            `validate_args`) negative ids or ids >= `vocab_size`.
        TypeError: for non-integer token tensors or options of the wrong type.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import bleu_score
        >>> hyp = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 7, 0, 0, 0]])
        >>> ref = torch.tensor([[5, 6, 7, 8, 4, 9], [5, 6, 7, 8, 0, 0]])
        >>> bleu_score(hyp, ref)
        tensor([0.5789, 0.7165], dtype=torch.float64)
        >>> bleu_score(hyp, ref, corpus=True)
        tensor(0.5823, dtype=torch.float64)
        >>> refs = torch.stack([ref, torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 7, 0, 0, 0]])], 1)
        >>> bleu_score(hyp, refs)  # (B, R, T'): two references per sentence
        tensor([1., 1.], dtype=torch.float64)
        >>> left = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 5, 6, 7]])  # decoder-only output
        >>> bleu_score(left, ref, padding_side="left")
        tensor([0.5789, 0.7165], dtype=torch.float64)

    ??? cite "References"
        - K. Papineni, S. Roukos, T. Ward, W.-J. Zhu. *BLEU: a Method for Automatic
          Evaluation of Machine Translation*. ACL 2002.
        - B. Chen, C. Cherry. *A Systematic Comparison of Smoothing Techniques for
          Sentence-Level BLEU*. WMT 2014.
        - M. Post. *A Call for Clarity in Reporting BLEU Scores* (sacrebleu). WMT 2018,
          arXiv:1804.08771.
    """
    return compute_bleu("bleu_score", hyp, ref, pad_id=pad_id, max_order=max_order,
                        smooth=smooth, smooth_value=smooth_value,
                        effective_order=effective_order, corpus=corpus,
                        vocab_size=vocab_size, padding_side=padding_side,
                        validate_args=validate_args)


def soft_bleu_score(input: Tensor, ref: Tensor, *, temperature: float | Tensor = 1.0,
                    pad_id: int = 0, max_order: int = 4, smooth: Smooth = "exp",
                    smooth_value: float | None = None, effective_order: bool | None = None,
                    corpus: bool = False, hyp_lengths: Tensor | None = None,
                    padding_side: PaddingSide = "right", validate_args: bool = True) -> Tensor:
    r"""Soft BLEU of per-position token distributions: differentiable in the logits.

    The hypothesis is a distribution $p_t = \mathrm{softmax}(z_t / \tau)$ per position
    $t < |h|$ instead of a token. The soft match of the hypothesis n-gram at $t$ with the
    reference n-gram at position $j$ of reference $k$ is the probability of producing it
    (Casas et al., 2018),

    $$
    M_n(t, k, j) = \prod_{i=0}^{n-1} p_{t+i}\bigl[r_{k, j+i}\bigr],
    $$

    so the soft count in the hypothesis of the reference n-gram $g$ at $(k, j)$ is
    $\hat c_h(g) = \sum_t M_n(t, k, j)$ and the clipped matches are

    $$
    m_n = \sum_{\text{distinct reference n-grams } g}
    \min\bigl(\hat c_h(g),\ \max_{k'} c_{r_{k'}}(g)\bigr)
    $$

    (hypothesis n-grams that are in no reference never match, so only reference n-grams
    are summed). $t_n$, $|h|$, $r$ and the formula are those of
    [`bleu_score`][softmetrics.functional.bleu_score]; the test "order without a match",
    discrete on counts, is written as $\max(1 - m_n, 0)$, which equals $[m_n = 0]$ on
    integers and is continuous in between (smoothed precision
    $(m_n + \max(1 - m_n, 0)\, s_n) / t_n$, score times $\min(m_1, 1)$), so the soft value
    tends to the exact one as $\tau \to 0$.

    **Hard limit:** at `temperature=0`, $p_t$ is the one-hot argmax and this equals
    `bleu_score(input.argmax(-1), ref, ...)` exactly (the same statistics code and formula
    run on 0/1 matches, in float64).

    **Memory:** $O(B\,T\,R\,T')$ for the match products: the vocabulary axis is only
    gathered at the reference ids. The log-normaliser is recomputed in the backward pass,
    so no `(B, T, V)` tensor besides the input and its gradient is kept (a tensor
    temperature uses plain autograd, which stores one).

    The options `pad_id`, `max_order`, `smooth`, `smooth_value`, `effective_order`,
    `corpus` and `padding_side` are those of
    [`bleu_score`][softmetrics.functional.bleu_score] (`corpus=True` sums the soft
    statistics; `padding_side` applies to `ref` and to the hypothesis positions, read
    from the argmax of `input`, or from `hyp_lengths`).

    Args:
        input: `(B, T, V)` logits over the vocabulary at each hypothesis position
            (teacher-forced or decoded).
        ref: `(B, T')` or `(B, R, T')` reference ids, padded with `pad_id` (as in
            [`bleu_score`][softmetrics.functional.bleu_score]). Ids outside
            `[0, V)` never match.
        temperature: $\tau \ge 0$, a number or a one-element tensor; 0 gives the exact BLEU.
        hyp_lengths: `(B,)` hypothesis lengths $|h|$: the first $|h|$ positions, or with
            `padding_side="left"` the last $|h|$. Default: the positions whose argmax
            makes up the sentence, as `bleu_score` reads ids (before the first argmax
            `pad_id`; with `"left"`, after the leading ones and up to the next). Lengths are
            not differentiable.
        validate_args: check that the logits are finite, reference ids >= 0 (except
            `pad_id`) and lengths in `[0, T]`; reads the data. Without it, NaN logits give
            NaN (for their sentence; for the corpus with `corpus=True`), also at
            `temperature=0`.

    Returns:
        Soft BLEU in $[0, 1]$: shape `(B,)`, or a scalar for `corpus=True`; float32 for
            half-precision logits, else the logits' dtype.

    Raises:
        ValueError: for tensors of the wrong rank or batch size, `max_order < 1`, an
            unknown `smooth`, a negative temperature, or (with `validate_args`) NaN or
            infinite logits, negative reference ids or lengths outside `[0, T]`.
        TypeError: for non-floating logits, non-integer references or lengths.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import soft_bleu_score
        >>> hyp = torch.tensor([[5, 6, 7, 8, 9, 0], [5, 6, 7, 0, 0, 0]])
        >>> ref = torch.tensor([[5, 6, 7, 8, 4, 9], [5, 6, 7, 8, 0, 0]])
        >>> logits = 4.0 * torch.nn.functional.one_hot(hyp, 10).float()
        >>> soft_bleu_score(logits.requires_grad_(), ref)
        tensor([0.4587, 0.6086], grad_fn=<WhereBackward0>)
        >>> soft_bleu_score(logits, ref, temperature=0)  # = bleu_score(hyp, ref)
        tensor([0.5789, 0.7165])

    ??? cite "References"
        - N. Casas, J. A. R. Fonollosa, M. R. Costa-jussà. *A differentiable BLEU loss.
          Analysis and first results*. ICLR 2018 Workshop (openreview HkG7hzyvf).
        - V. Zhukov, M. Kretov. *Differentiable lower bound for expected BLEU score*.
          arXiv:1712.04708, 2017.
    """
    return compute_soft_bleu("soft_bleu_score", input, ref, temperature=temperature,
                             pad_id=pad_id, max_order=max_order, smooth=smooth,
                             smooth_value=smooth_value, effective_order=effective_order,
                             corpus=corpus, hyp_lengths=hyp_lengths,
                             padding_side=padding_side, validate_args=validate_args)


def expected_bleu(samples: Tensor, log_probs: Tensor, ref: Tensor, *, alpha: float = 1.0,
                  length_normalize: bool = False, pad_id: int = 0, max_order: int = 4,
                  smooth: Smooth = "exp", smooth_value: float | None = None,
                  effective_order: bool | None = None, vocab_size: int | None = None,
                  reduction: Reduction = "mean", padding_side: PaddingSide = "right",
                  validate_args: bool = True) -> Tensor:
    r"""Expected sentence BLEU of K candidates per source under their renormalised model
    probabilities: the minimum-risk-training objective.

    For source $b$ with candidates $y_1, \dots, y_K$ (sampled or from beam search) and
    their sequence log-probabilities $\log p(y_k \mid x_b)$,

    $$
    \mathbb{E}[\mathrm{BLEU}]_b = \sum_{k=1}^{K} q_k\, \mathrm{BLEU}(y_k, r_b), \qquad
    q = \mathrm{softmax}_k\bigl(\alpha\, s_k\bigr),
    $$

    with $s_k = \log p(y_k \mid x_b)$, or $s_k = \log p(y_k \mid x_b) / |y_k|$ (per token)
    with `length_normalize=True`; the risk minimised by minimum risk training is
    $1 - \mathbb{E}[\mathrm{BLEU}]_b$ (Shen et al., 2016; Edunov et al., 2018). The BLEU
    values come from [`bleu_score`][softmetrics.functional.bleu_score] (sentence BLEU, all
    $B K$ candidates in one call, no gradient); the gradient flows into `log_probs`:
    $\partial / \partial \log p_k = \alpha\, q_k (\mathrm{BLEU}_k - \mathbb{E}[\mathrm{BLEU}])$,
    divided by $|y_k|$ with `length_normalize`.

    **Choosing `alpha`.** Sequence log-probabilities are sums over tokens, so those of the
    candidates of one source can differ by tens of nats; at the default $\alpha = 1$ the
    softmax then gives almost all weight to one candidate, and the gradient, which is
    proportional to $q_k$, reaches only the most probable one or two. A smaller $\alpha$
    spreads the weight, and scales the gradient down with it (Shen et al. use
    $\alpha = 5 \cdot 10^{-3}$). `length_normalize=True` scores each candidate by its
    mean log-probability per token, $|y_k|$ being the length BLEU counts (the ids before
    the first `pad_id`; with `padding_side="left"`, after the leading ones; an empty
    candidate counts as 1), so that $\alpha$ depends less on the sentence length and
    short candidates lose the advantage of fewer tokens. See
    [Choosing alpha](../text.md#choosing-alpha) for the weights and gradients as functions
    of $\alpha$. When `log_probs` include a token that `pad_id` cuts off (an
    end-of-sentence token), $|y_k|$ is one less than the number of tokens they sum over;
    divide them yourself if the exact mean matters.

    Sequence-level losses work best mixed with token-level cross-entropy: Edunov et al.
    (2018) report on IWSLT'14 De-En 31.78 BLEU for token NLL, 32.84 for sequence risk
    after NLL pre-training, and 32.93 for a weighted combination of both, e.g.

    ```python
    # logits: teacher-forced on the target shifted right (BOS first); `tgt` ends with EOS,
    # `ref` is its words only (EOS and what follows -> pad), as in examples/mrt_seq2seq.py
    risk = 1 - expected_bleu(samples, seq_log_probs, ref, length_normalize=True)
    loss = 0.7 * risk + 0.3 * F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=pad)
    ```

    **Hard limit:** this is an expectation of exact BLEU values; as $\alpha \to \infty$ it
    tends to the BLEU of the highest-scoring candidate (ties shared).

    The options `pad_id`, `max_order`, `smooth`, `smooth_value`, `vocab_size` and
    `padding_side` (for `samples` and `ref`: `"left"` for the left-padded output of a
    decoder-only model) are those of [`bleu_score`][softmetrics.functional.bleu_score].

    Args:
        samples: `(B, K, T)` candidate ids, padded with `pad_id` (see `padding_side`).
        log_probs: `(B, K)` sequence log-probabilities of the candidates (with gradient).
        ref: `(B, T')` or `(B, R, T')` references of each source.
        alpha: the sharpness $\alpha \ge 0$ of the candidate distribution ($\alpha = 0$:
            the mean BLEU of the candidates).
        length_normalize: divide each candidate's log-probability by its length before
            the softmax (per-token scores).
        effective_order: average only over the orders with candidate n-grams; None means
            True (sentence BLEU).
        reduction: `"mean"` (default), `"sum"` or `"none"` (per source, shape `(B,)`).
        validate_args: check the ids, and that `log_probs` are finite (reads the data).
            Without it, a NaN log-probability gives NaN for its source.

    Returns:
        Expected BLEU in $[0, 1]$: a scalar, or `(B,)` for `reduction="none"`; float32 for
            half-precision `log_probs`, else their dtype.

    Raises:
        ValueError: for tensors of the wrong rank, mismatched `B` or `K`, a negative
            `alpha`, an unknown option, or (with `validate_args`) invalid ids or NaN or
            infinite `log_probs`.
        TypeError: for non-integer samples or references, non-floating `log_probs`, or
            a `length_normalize` that is not a bool.

    Examples:
        >>> import torch
        >>> from softmetrics.functional import expected_bleu
        >>> samples = torch.tensor([[[5, 6, 7, 8, 0], [5, 6, 9, 0, 0], [4, 4, 4, 4, 4]]])
        >>> log_probs = torch.tensor([[-1.0, -1.5, -4.0]], requires_grad=True)
        >>> ref = torch.tensor([[5, 6, 7, 8, 0]])
        >>> value = expected_bleu(samples, log_probs, ref)
        >>> value
        tensor(0.7481, grad_fn=<MeanBackward0>)
        >>> value.backward()
        >>> log_probs.grad  # more mass on the better candidate
        tensor([[ 0.1521, -0.1296, -0.0225]])

        A short candidate has the larger sequence probability, a long one the larger
        probability per token:

        >>> samples = torch.tensor([[[5, 6, 7, 8, 9, 10], [5, 6, 0, 0, 0, 0]]])
        >>> log_probs = torch.tensor([[-9.0, -4.0]])  # per token: -1.5 and -2.0
        >>> ref = torch.tensor([[5, 6, 7, 8, 9, 10]])
        >>> expected_bleu(samples, log_probs, ref)  # almost all weight on the short one
        tensor(0.1411)
        >>> expected_bleu(samples, log_probs, ref, length_normalize=True)
        tensor(0.6736)

    ??? cite "References"
        - S. Shen, Y. Cheng, Z. He, W. He, H. Wu, M. Sun, Y. Liu. *Minimum Risk Training
          for Neural Machine Translation*. ACL 2016, arXiv:1512.02433.
        - S. Edunov, M. Ott, M. Auli, D. Grangier, M. Ranzato. *Classical Structured
          Prediction Losses for Sequence to Sequence Learning*. NAACL 2018,
          arXiv:1711.04956.
    """
    return compute_expected_bleu("expected_bleu", samples, log_probs, ref, alpha=alpha,
                                 length_normalize=length_normalize, pad_id=pad_id,
                                 max_order=max_order, smooth=smooth,
                                 smooth_value=smooth_value, effective_order=effective_order,
                                 vocab_size=vocab_size, reduction=reduction,
                                 padding_side=padding_side, validate_args=validate_args)
