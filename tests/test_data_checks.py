"""The checks that read tensor data (`validate_args=True`, the default): what they cost
and that their quick test on the whole tensor decides exactly as the check itself.

A validated call reads its data once: each check reduces its tensor on the device (no
copy of the tensor's size), and the call reads the outcome of all its checks with one
host synchronisation. The exact check, with its message, runs only when that outcome is
a failure.
"""

from __future__ import annotations

import pytest
import torch

from softmetrics import _checks, functional as F

from .allocations import Allocations, Synchronisations


def _logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _labels(high: int, *shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def _segmentation_call():
    x, y = _logits(2, 4, 6, 5), _labels(4, 2, 6, 5)
    y[:, 0] = 255
    return x, lambda v: F.soft_f1_score(x, y, task="multiclass", num_classes=4,
                                        ignore_index=255, validate_args=v)


def _multilabel_call():
    x, y = _logits(8, 3), _labels(2, 8, 3)
    y[0] = -1
    return x, lambda v: F.soft_jaccard_index(x, y, task="multilabel", num_classes=3,
                                             ignore_index=-1, validate_args=v)


def _soft_target_call():
    x = _logits(8, 3)
    y = torch.softmax(_logits(8, 3, seed=2), 1)
    return x, lambda v: F.soft_matthews_corrcoef(x, y, task="multiclass", num_classes=3,
                                                 validate_args=v)


def _binary_soft_target_call():
    x, y = _logits(8, 2, 3), torch.rand(8, 2, 3, generator=torch.Generator().manual_seed(3))
    return x, lambda v: F.soft_accuracy(x, y, task="binary", validate_args=v)


def _ranking_call():
    x, y = _logits(16, 3), _labels(2, 16, 3)
    y[0, 0] = -1
    return x, lambda v: F.soft_auroc(x, y, task="multilabel", num_classes=3, ignore_index=-1,
                                     validate_args=v)


def _multiclass_ranking_call():
    x, y = _logits(16, 3), _labels(3, 16)
    return x, lambda v: F.soft_average_precision(x, y, task="multiclass", num_classes=3,
                                                 validate_args=v)


def _retrieval_call():
    x, y = _logits(4, 6), _labels(2, 4, 6)
    y[:, -1] = -1
    return x, lambda v: F.soft_ndcg(x, y, ignore_index=-1, validate_args=v)


def _graded_retrieval_call():
    x, y = _logits(4, 6), torch.rand(4, 6, generator=torch.Generator().manual_seed(4)) * 3
    return x, lambda v: F.soft_ndcg(x, y, validate_args=v)


def _info_nce_call():
    q, k, n = _logits(6, 4), _logits(6, 4, seed=1), _logits(5, 4, seed=2)
    return q, lambda v: F.info_nce(q, k, negatives=n, validate_args=v)


def _nce_call():
    h, w, b = _logits(6, 4), _logits(10, 4, seed=1), _logits(10, seed=2)
    y = _labels(10, 6)
    noise = torch.softmax(_logits(10, seed=3), 0)
    return h, lambda v: F.nce_loss(h, y, w, b, num_noise=3, noise_distribution=noise,
                                   generator=torch.Generator().manual_seed(0),
                                   validate_args=v)


def _info_nce_learned_temperature_call():
    q, k = _logits(6, 4), _logits(6, 4, seed=1)
    tau = torch.tensor(0.3, requires_grad=True)
    return q, lambda v: F.info_nce(q, k, temperature=tau, validate_args=v)


def _sigmoid_call():
    q, k = _logits(6, 4), _logits(6, 4, seed=1)
    scale = torch.tensor(5.0, requires_grad=True)
    return q, lambda v: F.sigmoid_contrastive_loss(q, k, logit_scale=scale, validate_args=v)


def _soft_bleu_call():
    x, ref = _logits(3, 5, 7), _labels(7, 3, 6)
    ref[:, -2:] = 0
    lengths = torch.tensor([5, 3, 4])
    tau = torch.tensor(0.5)
    return x, lambda v: F.soft_bleu_score(x, ref, temperature=tau, hyp_lengths=lengths,
                                          validate_args=v)


def _bleu_call():
    hyp, ref = _labels(7, 3, 6), _labels(7, 3, 6, seed=2)
    return hyp, lambda v: F.bleu_score(hyp, ref, validate_args=v)


def _expected_bleu_call():
    samples, ref = _labels(7, 3, 4, 6), _labels(7, 3, 6, seed=2)
    log_probs = torch.log_softmax(_logits(3, 4), 1)
    return log_probs, lambda v: F.expected_bleu(samples, log_probs, ref, validate_args=v)


CALLS = {
    "InfoNCE with a learned temperature": _info_nce_learned_temperature_call,
    "sigmoid contrastive loss with a learned scale": _sigmoid_call,
    "soft BLEU with lengths and a tensor temperature": _soft_bleu_call,
    "BLEU of token ids": _bleu_call,
    "expected BLEU": _expected_bleu_call,
    "classification, 4-D with ignore_index": _segmentation_call,
    "classification, multilabel with ignore_index": _multilabel_call,
    "classification, class probabilities": _soft_target_call,
    "classification, binary probabilities": _binary_soft_target_call,
    "ranking, multilabel with ignore_index": _ranking_call,
    "ranking, multiclass": _multiclass_ranking_call,
    "retrieval, binary relevance with ignore_index": _retrieval_call,
    "retrieval, graded relevance": _graded_retrieval_call,
    "InfoNCE with negatives": _info_nce_call,
    "NCE with a noise distribution": _nce_call,
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_validated_call_reads_its_data_once(name, monkeypatch):
    """Every data check of a call is settled by one host synchronisation (on a GPU, one
    wait for the device), on top of what the call reads without validation."""
    _, call = CALLS[name]()
    reads = {}
    for validate in (True, False):
        with Synchronisations() as sync:
            sync.count_tolist(monkeypatch)
            call(validate)
            monkeypatch.undo()
        reads[validate] = sync.names
    # (some calls read data themselves: the ranking losses list the positives on a CPU)
    assert len(reads[True]) == len(reads[False]) + 1, reads


# labels of the input's size whose ignore_index lies outside {0, 1}, with no masked copy
# of them at hand: the quick test makes one (a comparison and the copy)
MASKED_COPY = {"ranking, multilabel with ignore_index": 2}
# the token ids are read for their largest value (the call sizes its counts by it), from
# copies with the padding masked: not a cost of the checks alone
READS_IDS = {"BLEU of token ids", "expected BLEU"}


@pytest.mark.parametrize("name", sorted(set(CALLS) - READS_IDS))
def test_a_validated_call_copies_no_input(name):
    """The checks reduce each tensor where it lies: validation adds no temporary as large
    as the call's main input (a copy, or a boolean mask of it), but where said."""
    x, call = CALLS[name]()
    big = {}
    for validate in (True, False):
        with Allocations() as alloc:
            call(validate)
        big[validate] = sorted(s for s in alloc.sizes if s >= x.numel())
    extra = list(big[True])
    for size in big[False]:
        extra.remove(size)
    assert extra == [x.numel()] * MASKED_COPY.get(name, 0)


FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _check(name: str, *args, **kwargs) -> None:
    """One value check of `DataChecks` (`finite`, `values_in`, `probabilities`), settled."""
    checks = _checks.DataChecks()
    getattr(checks, name)(*args, **kwargs)
    checks.settle()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", [0, 7, -1])
def test_the_finite_check_finds_any_non_finite_entry(dtype, bad, where):
    x = _logits(3, 5).to(dtype)
    x.view(-1)[where] = bad
    with pytest.raises(ValueError, match="expected `input` to be finite"):
        _check("finite", "f", "input", x)


@pytest.mark.parametrize("dtype", FLOATS)
def test_the_finite_check_passes_ordinary_scores_without_the_exact_check(dtype,
                                                                         monkeypatch):
    """The quick test alone passes ordinary scores: 2^17 logits of 8 in half precision
    sum to 2^20, beyond float16's largest number, so the quick test must not sum in the
    input's dtype (the exact check, a second pass, would then run at every call)."""
    def exact(*args):
        raise AssertionError("the exact check ran")

    monkeypatch.setattr(_checks, "_finite_exact", exact)
    _check("finite", "f", "input", torch.full((1024, 128), 8.0, dtype=dtype))
    with pytest.raises(AssertionError, match="the exact check ran"):
        _check("finite", "f", "input", torch.tensor([1.0, float("nan")], dtype=dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_the_finite_check_passes_the_extremes_of_each_dtype(dtype):
    """The largest and smallest finite numbers together: their sum or difference can
    overflow, which the quick test may take for a failure; the exact check then passes
    them."""
    info = torch.finfo(dtype)
    x = torch.tensor([info.max, info.min, info.tiny, -0.0, 0.0], dtype=dtype)
    _check("finite", "f", "input", x)
    _check("finite", "f", "input", x[:0])
    _check("finite", "f", "input", x[0])  # 0-d


@pytest.mark.parametrize("ignore", [None, -100, 255, 1])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.float32])
def test_the_value_check_decides_as_the_rule(ignore, dtype):
    """Values in [0, 3) or equal to `ignore` pass; any other value fails, with the first
    such value in the message."""
    if dtype == torch.uint8 and ignore == -100:
        pytest.skip("uint8 holds no -100")
    good = [0, 1, 2, 2, 0] + ([] if ignore is None else [ignore])
    _check("values_in", "f", "target", torch.tensor(good, dtype=dtype), 0, 3,
                            ignore=ignore)
    bads = [3, 254] + ([] if dtype == torch.uint8 else [-1, -101])
    if dtype.is_floating_point:
        bads.append(0.5)
    for bad in bads:
        if bad == ignore:
            continue
        t = torch.tensor([*good, bad, 1], dtype=dtype)
        with pytest.raises(ValueError, match=f"a value {t[-2].item()!r}"):
            _check("values_in", "f", "target", t, 0, 3, ignore=ignore)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16])
@pytest.mark.parametrize("high", [256, 300, 40000])
def test_the_value_check_takes_bounds_beyond_a_narrow_dtype_as_they_are(dtype, high):
    """A bound the target's dtype cannot hold (`num_classes=300` for uint8 labels) is a
    bound on the values, not on their wrapped rounding (300 would read as 44 in uint8, 256
    as 0): every value the dtype holds below it passes, and one below `low` still fails."""
    info = torch.iinfo(dtype)
    top = min(info.max, high - 1)
    if top == high - 1:  # the dtype holds the bound less one: no value above to fail with
        good = torch.tensor([0, top // 2, top], dtype=dtype)
    else:
        good = torch.tensor([0, 200 if info.max > 200 else 100, top], dtype=dtype)
    _check("values_in", "f", "target", good, 0, high)
    _check("values_in", "f", "target", good, 0, high, ignore=1)
    if info.min < 0:
        with pytest.raises(ValueError, match="a value -1"):
            _check("values_in", "f", "target", torch.tensor([3, -1], dtype=dtype), 0, high)
    if high - 1 < info.max:
        with pytest.raises(ValueError, match=f"a value {high}"):
            _check("values_in", "f", "target", torch.tensor([3, high], dtype=dtype), 0, high)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16])
def test_labels_in_a_narrow_dtype_with_more_classes_than_it_holds(dtype):
    """uint8 labels with 300 classes are labels: the metric equals that of int64 labels,
    with and without ignored entries (the masked labels take the quick test's path)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 300, generator=g)
    y = torch.randint(0, 250, (64,), generator=g)
    for ignore in (None, 7):
        expected = F.soft_f1_score(x, y, task="multiclass", num_classes=300, average="micro",
                                   ignore_index=ignore, temperature=0)
        got = F.soft_f1_score(x, y.to(dtype), task="multiclass", num_classes=300,
                              average="micro", ignore_index=ignore, temperature=0)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_the_value_check_passes_boolean_and_empty_targets():
    _check("values_in", "f", "target", torch.tensor([True, False]), 0, 2)
    _check("values_in", "f", "target", torch.tensor([], dtype=torch.long), 0, 2)
    _check("values_in", "f", "target", torch.tensor([7, 7]), 0, 2, ignore=7)


@pytest.mark.parametrize("ignore", [None, 255])
def test_the_probability_check_decides_as_the_rule(ignore):
    ok = torch.tensor([0.0, 1.0, 0.25] + ([] if ignore is None else [ignore]))
    _check("probabilities", "f", "target", ok, ignore=ignore)
    for bad in (1.0000001, -1e-30, float("nan"), 2.0):
        t = torch.cat([ok, torch.tensor([bad])])
        with pytest.raises(ValueError, match="probabilities in"):
            _check("probabilities", "f", "target", t, ignore=ignore)


def test_the_probability_check_reads_the_sums_over_the_class_axis():
    y = torch.softmax(_logits(4, 3), 1)
    _check("probabilities", "f", "target", y, class_axis=1)
    y[2] *= 0.9
    with pytest.raises(ValueError, match="summing to 1 over axis 1"):
        _check("probabilities", "f", "target", y, class_axis=1)


def test_failed_checks_report_in_the_order_of_the_arguments():
    """With a bad target and a bad input, the message is the one the checks give in
    order: the target's (checked first, as before the checks were settled together)."""
    x, y = _logits(4, 3), _labels(3, 4)
    x[0, 0], y[1] = float("nan"), 5
    with pytest.raises(ValueError, match="`target`"):
        F.soft_f1_score(x, y, task="multiclass", num_classes=3)
    y[1] = 0
    with pytest.raises(ValueError, match="`input` to be finite"):
        F.soft_f1_score(x, y, task="multiclass", num_classes=3)
