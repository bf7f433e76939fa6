"""Robustness of the ranking, text (BLEU) and contrastive families: fuzzing, half precision,
autocast and torch.compile.

The fuzz tests draw random shapes (empty batches and size-1 axes included), dtypes, scales
up to 1e4 and option values, mostly valid and a bad one about one time in ten. The only
exceptions allowed are the documented ValueError and TypeError; an accepted call on finite
inputs gives finite values and finite gradients. `SOFTMETRICS_FUZZ_EXAMPLES` raises the
budget (default: a few hundred examples per test).
"""

from __future__ import annotations

import math
import os
import re

import pytest
import torch
from hypothesis import event, given, settings, strategies as st

import softmetrics
from softmetrics import functional as F

FUZZ_EXAMPLES = int(os.environ.get("SOFTMETRICS_FUZZ_EXAMPLES", "300"))
FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _pick(draw, valid, bad):
    """Mostly a valid value, a bad one one time in 40: with the 4 to 10 options of a call,
    about one call in ten to one in four has a bad value somewhere."""
    if draw(st.integers(0, 39)) == 20 and bad:  # not 0: hypothesis favours the bounds
        return draw(st.sampled_from(list(bad)))
    return draw(st.sampled_from(list(valid)))


def _floats(draw, shape, g, *, scale=None, dtype=None):
    """Random floats of `shape` (ties now and then), in a drawn dtype (or a wrong one)."""
    dtype = dtype or _pick(draw, FLOATS, [torch.int64])
    scale = scale or draw(st.sampled_from([1.0, 30.0, 1e4]))
    x = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    if draw(st.integers(0, 4)) == 0:
        x = x.round()  # exact ties (and zeros)
    return x.round().long() if dtype == torch.int64 else x.to(dtype)


def _finite(value) -> bool:
    return bool(torch.isfinite(value).all())


def _check_grads(out, inputs, recompute):
    """Gradients of `out.sum()` w.r.t. the floating `inputs` are finite.

    A half-precision gradient may overflow where the true gradient is larger than the
    dtype can hold; then the float32 gradient (from `recompute`, given float32 copies of
    the inputs) must really be that large, and finite.
    """
    leaves = [i for i, t in enumerate(inputs) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not leaves or not out.requires_grad or out.numel() == 0:
        return
    grads = torch.autograd.grad(out.sum(), [inputs[i] for i in leaves], allow_unused=True)
    for i, grad in zip(leaves, grads, strict=True):
        if grad is None or _finite(grad):
            continue
        x = inputs[i]
        assert x.dtype in HALF, f"non-finite gradient for a {x.dtype} input"
        copies = list(inputs)
        copies[i] = x.detach().float().requires_grad_()
        (grad32,) = torch.autograd.grad(recompute(copies).sum(), copies[i])
        assert _finite(grad32)
        assert grad32.abs().max() > torch.finfo(x.dtype).max / 2, "half gradient overflow"
        event("half-precision gradient beyond the dtype's range")


def _documented(error: Exception) -> None:
    """A rejection must be the library's own message: "<function>: expected `<arg>` ..."."""
    message = str(error)
    assert re.match(r"^\w+: expected `\w+` to be ", message), message
    event("rejected with a documented error")
    event(message.split(" to be ")[0])


def _replaying(generator):
    """A function that puts `generator` back in its present state: called before every
    call of a loss that draws noise, the call and the float32 recompute of a half-precision
    gradient (`_check_grads`) draw the same noise classes, so they compute the same loss."""
    state = None if generator is None else generator.get_state()

    def replay():
        if generator is not None:
            generator.set_state(state)

    return replay


def _run(call, inputs, module=False):
    """Call; accept only ValueError/TypeError; check finite values and gradients."""
    try:
        out = call(inputs)
    except (ValueError, TypeError) as error:
        _documented(error)
        return None
    event("accepted")
    assert isinstance(out, torch.Tensor)
    assert _finite(out), f"non-finite value {out}"
    _check_grads(out, inputs, call)
    return out


def _leaves(*tensors):
    return [t.requires_grad_() if isinstance(t, torch.Tensor) and t.is_floating_point() else t
            for t in tensors]


# --------------------------------------------------------------------------------------
# ranking
# --------------------------------------------------------------------------------------

RANKING_FUNCTIONS = [F.soft_auroc, F.soft_average_precision,
                     F.soft_calibrated_average_precision]
RANKING_MODULES = [softmetrics.SoftAUROCLoss, softmetrics.SoftAveragePrecisionLoss,
                   softmetrics.SoftCalibratedAveragePrecisionLoss]


@st.composite
def ranking_case(draw, device):
    task = _pick(draw, ["binary", "multiclass", "multilabel"], ["ranking"])
    c = draw(st.integers(1 if task == "multilabel" else 2, 5))
    n = draw(st.sampled_from([0, 1, 2, 3, 6, 17]))
    extra = draw(st.sampled_from([(), (1,), (2, 3)]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    in_shape = (n, *extra) if task in ("binary", "ranking") else (n, c, *extra)
    in_shape = (*in_shape, *_pick(draw, [()], [(2,)]))  # a wrong shape now and then
    x = _floats(draw, in_shape, g)
    ignore_index = draw(st.sampled_from([None, None, -1, 255]))
    if task == "multiclass":
        t_shape = (n, *extra)
        y = torch.randint(0, c + _pick(draw, [0], [1]), t_shape, generator=g)
    else:
        t_shape = (n, *extra) if task != "multilabel" else (n, c, *extra)
        y = torch.randint(0, 2 + _pick(draw, [0], [1]), t_shape, generator=g)
    if ignore_index is not None:
        y = torch.where(torch.rand(t_shape, generator=g) < 0.2, ignore_index, y)
    y_dtypes = [torch.int64, torch.int32] + ([torch.bool, torch.float32]
                                             if task != "multiclass" else [])
    y_dtype = _pick(draw, y_dtypes, [torch.float32])
    if y_dtype == torch.bool and ignore_index is None:
        y = y.bool()
    elif y_dtype != torch.bool:
        y = y.to(y_dtype)
    temperature = _pick(draw, [0, 1e-3, 0.5, 1.0, 10.0, "tensor"], [-1.0, "int-tensor"])
    if temperature == "tensor":
        temperature = torch.tensor(0.5, device=device)
    elif temperature == "int-tensor":
        temperature = torch.tensor(1, device=device)
    options = dict(
        task=task,
        num_classes=_pick(draw, [c], [None, c + 1, 0]),
        average=_pick(draw, ["micro", "macro", "weighted", "none"], ["samples"]),
        temperature=temperature,
        ignore_index=ignore_index,
        chunk_size=_pick(draw, [None, 1, 3, 64], [0]),
    )
    return x.to(device), y.to(device), options


@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.data(), index=st.integers(0, len(RANKING_FUNCTIONS) - 1))
def test_fuzz_ranking_functions(data, index, device):
    x, y, options = data.draw(ranking_case(device))
    fn = RANKING_FUNCTIONS[index]
    out = _run(lambda t: fn(t[0], y, **options), _leaves(x))
    if out is not None:
        assert ((out >= 0) & (out <= 1)).all()


@settings(max_examples=FUZZ_EXAMPLES // 2)
@given(data=st.data(), index=st.integers(0, len(RANKING_MODULES) - 1))
def test_fuzz_ranking_modules(data, index, device):
    x, y, options = data.draw(ranking_case(device))
    try:
        loss_fn = RANKING_MODULES[index](**options)
    except (ValueError, TypeError) as error:
        _documented(error)
        return
    _run(lambda t: loss_fn(t[0], y), _leaves(x))
    _run(lambda t: loss_fn.metric(t[0], y), [x.detach()])


RETRIEVAL_FUNCTIONS = [F.soft_ndcg, F.soft_recall_at_k, F.soft_precision_at_k,
                       F.soft_reciprocal_rank, F.soft_retrieval_average_precision]
RETRIEVAL_MODULES = [softmetrics.SoftNDCGLoss, softmetrics.SoftRecallAtKLoss,
                     softmetrics.SoftPrecisionAtKLoss, softmetrics.SoftMRRLoss,
                     softmetrics.SoftRetrievalAPLoss]


@st.composite
def retrieval_case(draw, device, index):
    """(Q, G) scores and relevance (graded for NDCG), options of the retrieval metrics."""
    q, gallery = draw(st.sampled_from([0, 1, 3, 7])), draw(st.sampled_from([0, 1, 2, 5, 17]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    shape = _pick(draw, [(q, gallery)], [(gallery,), (q, gallery, 2)])
    x = _floats(draw, shape, g)
    high = (4 if index == 0 else 2) + _pick(draw, [0], [1])
    y = torch.randint(0, high, (q, gallery), generator=g) - _pick(draw, [0], [1])
    ignore_index = draw(st.sampled_from([None, None, -1]))
    if ignore_index is not None:
        y = torch.where(torch.rand(q, gallery, generator=g) < 0.2, ignore_index, y)
    y = y.to(_pick(draw, [torch.int64, torch.float32, torch.int32], [torch.float16]))
    temperature = _pick(draw, [0, 1e-3, 0.5, 10.0, "tensor"], [-1.0])
    if temperature == "tensor":
        temperature = torch.tensor(0.5, device=device)
    options = dict(temperature=temperature, ignore_index=ignore_index,
                   reduction=_pick(draw, ["mean", "sum", "none"], ["max"]),
                   chunk_size=_pick(draw, [None, 1, 3, 64], [0]))
    if index in (1, 2):
        options["k"] = _pick(draw, [1, 2, 5, 30], [0])
    elif index in (0, 3):
        options["k"] = _pick(draw, [None, 1, 5], [0])
    if index < 4:
        options["cutoff_temperature"] = _pick(draw, [None, 0.1, 1.0], [-1.0])
    return x.to(device), y.to(device), options


@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.data(), index=st.integers(0, len(RETRIEVAL_FUNCTIONS) - 1))
def test_fuzz_retrieval_functions(data, index, device):
    x, y, options = data.draw(retrieval_case(device, index))
    out = _run(lambda t: RETRIEVAL_FUNCTIONS[index](t[0], y, **options), _leaves(x))
    if out is not None and options["reduction"] != "sum":
        assert ((out >= 0) & (out <= 1)).all()


@settings(max_examples=FUZZ_EXAMPLES // 2)
@given(data=st.data(), index=st.integers(0, len(RETRIEVAL_MODULES) - 1))
def test_fuzz_retrieval_modules(data, index, device):
    x, y, options = data.draw(retrieval_case(device, index))
    try:
        loss_fn = RETRIEVAL_MODULES[index](**options)
    except (ValueError, TypeError) as error:
        _documented(error)
        return
    _run(lambda t: loss_fn(t[0], y), _leaves(x))
    _run(lambda t: loss_fn.metric(t[0], y), [x.detach()])


# --------------------------------------------------------------------------------------
# text (BLEU)
# --------------------------------------------------------------------------------------


@st.composite
def token_ids(draw, shape, vocab, pad_id, g):
    """Ids in [0, vocab) with padding sprinkled in; negative ids or floats now and then."""
    ids = torch.randint(0, vocab, shape, generator=g)
    ids = torch.where(torch.rand(shape, generator=g) < 0.2, pad_id, ids)
    kind = _pick(draw, ["ok"], ["negative", "float"])
    if kind == "negative" and ids.numel():
        ids = ids.clone()
        ids.view(-1)[0] = -7
    elif kind == "float":
        ids = ids.float()
    return ids


@st.composite
def bleu_options(draw):
    return dict(
        pad_id=_pick(draw, [0, 0, -1], [0.5]),
        max_order=_pick(draw, [1, 2, 4, 5], [0]),
        smooth=_pick(draw, ["none", "floor", "add-k", "exp"], ["add-one"]),
        smooth_value=_pick(draw, [None, None, 0.0, 0.5, 2.0], [-1.0]),
        effective_order=_pick(draw, [None, True, False], ["yes"]),
    )


@st.composite
def text_case(draw, device, names=("bleu_score", "soft_bleu_score", "expected_bleu")):
    """(name, inputs, kwargs) for one of bleu_score, soft_bleu_score, expected_bleu."""
    name = draw(st.sampled_from(names))
    b = draw(st.sampled_from([0, 1, 2, 4]))
    t_hyp = draw(st.sampled_from([0, 1, 3, 7]))
    t_ref = draw(st.sampled_from([0, 1, 4, 8]))
    refs = draw(st.sampled_from([None, 1, 3]))  # None: a (B, T') reference
    vocab = draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    options = draw(bleu_options())
    pad = options["pad_id"] if isinstance(options["pad_id"], int) else 0
    ref_shape = (b, t_ref) if refs is None else (b, refs, t_ref)
    ref_shape = (b + _pick(draw, [0], [1]), *ref_shape[1:])  # a batch-size mismatch
    ref = draw(token_ids(ref_shape, vocab, pad, g)).to(device)
    if name == "bleu_score":
        hyp = draw(token_ids((b, t_hyp), vocab, pad, g)).to(device)
        options.update(corpus=_pick(draw, [False, True], [1]),
                       vocab_size=_pick(draw, [None, vocab + 1, 1000], [0]))
        return name, [hyp, ref], options
    if name == "soft_bleu_score":
        z = _floats(draw, (b, t_hyp, vocab), g).to(device)
        lengths = None
        if draw(st.booleans()):
            lengths = torch.randint(0, t_hyp + 1, (b,), generator=g)
            lengths = lengths + _pick(draw, [0], [t_hyp + 1])
            lengths = lengths.to(device)
        temperature = _pick(draw, [0, 1e-3, 0.5, 1.0, 10.0, "tensor"], [-1.0])
        if temperature == "tensor":
            temperature = torch.tensor(0.7, device=device)
        options.update(corpus=draw(st.booleans()), temperature=temperature,
                       hyp_lengths=lengths)
        return name, [z, ref], options
    k = draw(st.integers(1, 4))
    samples = draw(token_ids((b, k, t_hyp), vocab, pad, g)).to(device)
    log_probs = _floats(draw, (b, k + _pick(draw, [0], [1])), g).to(device)
    if log_probs.is_floating_point():
        log_probs = -log_probs.abs()
    options.update(alpha=_pick(draw, [0.0, 1.0, 10.0], [-1.0]),
                   vocab_size=_pick(draw, [None, vocab + 1], [0]),
                   reduction=_pick(draw, ["mean", "sum", "none"], ["avg"]))
    return name, [samples, log_probs, ref], options


@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.data())
def test_fuzz_text_functions(data, device):
    name, args, options = data.draw(text_case(device))
    event(name)
    fn = getattr(F, name)
    if name == "bleu_score":
        out = _run(lambda t: fn(*t, **options), args)
    elif name == "soft_bleu_score":
        z, ref = args
        out = _run(lambda t: fn(t[0], ref, **options), _leaves(z))
    else:
        samples, log_probs, ref = args
        out = _run(lambda t: fn(samples, t[0], ref, **options), _leaves(log_probs))
    if out is not None:
        floor_above_one = options["smooth"] == "floor" and (options["smooth_value"] or 0) > 1
        summed = options.get("reduction") == "sum"
        upper = math.inf if floor_above_one or summed else 1.0
        assert ((out >= 0) & (out <= upper)).all()


@settings(max_examples=FUZZ_EXAMPLES // 2)
@given(data=st.data())
def test_fuzz_text_modules(data, device):
    name, args, options = data.draw(text_case(device, ("soft_bleu_score", "expected_bleu")))
    event(name)
    if name == "soft_bleu_score":
        z, ref = args
        lengths = options.pop("hyp_lengths")
        options["reduction"] = _pick(data.draw, ["mean", "sum", "none"], ["avg"])
        try:
            loss_fn = softmetrics.SoftBLEULoss(**options)
        except (ValueError, TypeError) as error:
            _documented(error)
            return
        _run(lambda t: loss_fn(t[0], ref, lengths), _leaves(z))
        _run(lambda t: loss_fn.metric(t[0], ref, lengths), [z.detach()])
    else:
        samples, log_probs, ref = args
        try:
            loss_fn = softmetrics.ExpectedBLEULoss(**options)
        except (ValueError, TypeError) as error:
            _documented(error)
            return
        _run(lambda t: loss_fn(samples, t[0], ref), _leaves(log_probs))
        _run(lambda t: loss_fn.metric(samples, t[0], ref), [log_probs.detach()])


# --------------------------------------------------------------------------------------
# contrastive
# --------------------------------------------------------------------------------------


@st.composite
def pair_case(draw, device):
    """(query, key, negatives) with drawn shapes, dtypes and scales."""
    n = _pick(draw, [1, 2, 3, 8], [0])
    d = draw(st.sampled_from([1, 2, 5]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    dtype = _pick(draw, FLOATS, [torch.int64])
    scale = draw(st.sampled_from([1.0, 30.0, 1e4]))
    q = _floats(draw, (n, d), g, scale=scale, dtype=dtype)
    key_shape = (n + _pick(draw, [0], [1]), d)
    k = _floats(draw, key_shape, g, scale=scale, dtype=dtype)
    if draw(st.integers(0, 5)) == 0 and n:
        k[0] = 0  # a zero vector (normalisation's 0/0)
        k = k.clone()
    kind = _pick(draw, [None, None, "shared", "per_query"], ["bad"])
    m = draw(st.sampled_from([0, 1, 4]))
    if kind == "shared":
        negatives = _floats(draw, (m, d), g, scale=scale, dtype=dtype)
    elif kind == "per_query":
        negatives = _floats(draw, (n, m, d), g, scale=scale, dtype=dtype)
    elif kind == "bad":
        negatives = _floats(draw, (m, d + 1), g, scale=scale, dtype=dtype)
    else:
        negatives = None
    return tuple(None if t is None else t.to(device) for t in (q, k, negatives))


@st.composite
def contrastive_options(draw, device):
    temperature = _pick(draw, [0.07, 1e-3, 1.0, 10.0, "tensor"], [0.0, -1.0, "int-tensor"])
    if temperature == "tensor":
        temperature = torch.tensor(0.2, device=device)
    elif temperature == "int-tensor":
        temperature = torch.tensor(1, device=device)
    return dict(
        in_batch_negatives=draw(st.booleans()),
        query_negatives=draw(st.booleans()),
        temperature=temperature,
        symmetric=draw(st.booleans()),
        normalize=draw(st.booleans()),
        reduction=_pick(draw, ["mean", "sum", "none"], ["avg"]),
        chunk_size=_pick(draw, [None, 1, 3, 1000], [0]),
    )


@st.composite
def nce_case(draw, device):
    n = draw(st.sampled_from([0, 1, 3, 8]))
    h = draw(st.sampled_from([1, 4]))
    v = _pick(draw, [1, 2, 7], [0])
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = _floats(draw, (n, h), g)
    w = _floats(draw, (v, h + _pick(draw, [0], [1])), g)
    bias = draw(st.sampled_from([None, "bias"]))
    if bias:
        bias = _floats(draw, (v,), g)
    target = torch.randint(0, max(v, 1) + _pick(draw, [0], [1]), (n,), generator=g)
    noise = _pick(draw, [None, None, "random"], ["one-hot", "bad-sum"])
    if noise == "random":
        q = torch.rand(max(v, 1), generator=g, dtype=torch.float64) + 0.01
        noise = (q / q.sum())[:v].to(_pick(draw, FLOATS[2:], FLOATS[:2]))
    elif noise == "one-hot":  # zero at some targets unless V == 1
        noise = torch.zeros(v)
        if v:
            noise[0] = 1.0
    elif noise == "bad-sum":
        noise = torch.full((v,), 0.5)
    def to(t):
        return None if t is None or isinstance(t, str) else t.to(device)

    options = dict(num_noise=_pick(draw, [1, 3, 20], [0]), noise_distribution=to(noise),
                   shared_noise=draw(st.booleans()),
                   reduction=_pick(draw, ["mean", "sum", "none"], ["avg"]))
    if device.type == "cpu":
        options["generator"] = g
    return to(x), target.to(device), to(w), to(bias), options


@st.composite
def siglip_options(draw, device):
    scale = _pick(draw, [10.0, 1e-3, 100.0, "tensor"], [0.0, -1.0, "int-tensor"])
    if scale == "tensor":
        scale = torch.tensor(3.0, device=device)
    elif scale == "int-tensor":
        scale = torch.tensor(1, device=device)
    return dict(logit_scale=scale, logit_bias=_pick(draw, [-10.0, 0.0, 1e4], [math.nan]),
                normalize=draw(st.booleans()),
                reduction=_pick(draw, ["mean", "sum", "none"], ["avg"]),
                chunk_size=_pick(draw, [None, 1, 3, 1000], [0]))


@settings(max_examples=FUZZ_EXAMPLES)
@given(data=st.data(), name=st.sampled_from(["info_nce", "retrieval_accuracy",
                                            "mutual_information_bound", "nce_loss",
                                            "sigmoid_contrastive_loss"]))
def test_fuzz_contrastive_functions(data, name, device):
    event(name)
    if name == "nce_loss":
        x, target, w, bias, options = data.draw(nce_case(device))
        replay = _replaying(options.get("generator"))

        def call(t):
            replay()
            return F.nce_loss(t[0], target, t[1], t[2], **options)

        _run(call, _leaves(x, w, bias))
        return
    q, k, negatives = data.draw(pair_case(device))
    if name == "sigmoid_contrastive_loss":
        options = data.draw(siglip_options(device))
        _run(lambda t: F.sigmoid_contrastive_loss(t[0], t[1], **options), _leaves(q, k))
        return
    options = data.draw(contrastive_options(device))
    if negatives is not None:  # extra negatives belong to one direction
        options["symmetric"] = _pick(data.draw, [False], [True])
    if name == "info_nce":
        _run(lambda t: F.info_nce(t[0], t[1], negatives=t[2], **options),
             _leaves(q, k, negatives))
    elif name == "retrieval_accuracy":
        for key in ("temperature", "symmetric", "chunk_size"):
            del options[key]
        options["k"] = _pick(data.draw, [1, 2, 5], [0, 1.5])
        out = _run(lambda t: F.retrieval_accuracy(t[0], t[1], negatives=t[2], **options),
                   [q, k, negatives])
        if out is not None and options["reduction"] != "sum":
            assert ((out >= 0) & (out <= 1)).all()
    else:
        loss = q.reshape(-1)[:1].abs().sum() if q.is_floating_point() else 0.5
        loss = _pick(data.draw, [loss, 0.5, 3], [True, "0.5"])
        count = _pick(data.draw, [1, 8, 1000, torch.tensor(16)], [0, 2.5, torch.tensor(2.0)])
        inputs = _leaves(loss) if isinstance(loss, torch.Tensor) else [loss]
        _run(lambda t: F.mutual_information_bound(t[0], count), inputs)


@settings(max_examples=FUZZ_EXAMPLES // 2)
@given(data=st.data(), name=st.sampled_from(["InfoNCELoss", "NCELoss", "SigLIPLoss"]))
def test_fuzz_contrastive_modules(data, name, device):
    event(name)
    if name == "SigLIPLoss":
        q, k, _ = data.draw(pair_case(device))
        options = data.draw(siglip_options(device))
        options.update(learnable=data.draw(st.booleans()), k=_pick(data.draw, [1, 3], [0]),
                       max_logit_scale=_pick(data.draw, [100.0, 1e4], [0.0]))
        try:
            loss_fn = softmetrics.SigLIPLoss(**options).to(device)
        except (ValueError, TypeError) as error:
            _documented(error)
            return
        _run(lambda t: loss_fn(*t), _leaves(q, k))
        _run(lambda t: loss_fn.metric(*t), [q.detach(), k.detach()])
        return
    if name == "NCELoss":
        x, target, w, bias, options = data.draw(nce_case(device))
        generator = options.pop("generator", None)
        num_noise = options.pop("num_noise")
        noise = options.pop("noise_distribution")
        try:
            loss_fn = softmetrics.NCELoss(w.shape[0], num_noise, noise, **options)
        except (ValueError, TypeError) as error:
            _documented(error)
            return
        replay = _replaying(generator)

        def call(t):
            replay()
            return loss_fn(t[0], target, t[1], t[2], generator=generator)

        _run(call, _leaves(x, w, bias))
        _run(lambda t: loss_fn.metric(*t), [x.detach(), target, w.detach(),
                                            None if bias is None else bias.detach()])
        return
    q, k, negatives = data.draw(pair_case(device))
    options = data.draw(contrastive_options(device))
    if isinstance(options["temperature"], torch.Tensor):
        options["temperature"] = 0.3
    if negatives is not None:
        options["symmetric"] = _pick(data.draw, [False], [True])
    options.update(learn_temperature=data.draw(st.booleans()),
                   k=_pick(data.draw, [1, 3], [0]))
    try:
        loss_fn = softmetrics.InfoNCELoss(**options).to(device)
    except (ValueError, TypeError) as error:
        _documented(error)
        return
    _run(lambda t: loss_fn(*t), _leaves(q, k, negatives))
    _run(lambda t: loss_fn.metric(*t), [q.detach(), k.detach(),
                                        None if negatives is None else negatives.detach()])


# --------------------------------------------------------------------------------------
# half precision and autocast: every loss of the three families, at sizes where a
# half-precision sum or product would overflow or round badly
# --------------------------------------------------------------------------------------

LOSSES = ["auroc-binary", "ap-multilabel", "cap-multiclass", "soft-bleu", "expected-bleu",
          "info-nce", "info-nce-tiled", "siglip", "siglip-tiled", "nce"]


def _loss_case(name: str, device: torch.device):
    """(features, layer, call) where `call(layer(features))` is the loss."""
    g = torch.Generator().manual_seed(0)
    if name in ("auroc-binary", "ap-multilabel", "cap-multiclass"):
        # samples: the pair count |P| |N| is far beyond float16's 65504
        n = 4096 if name == "auroc-binary" else 1024
        out = {"auroc-binary": 1, "ap-multilabel": 3, "cap-multiclass": 4}[name]
        if name == "auroc-binary":
            loss_fn = softmetrics.SoftAUROCLoss(task="binary", temperature=0.5)
            y = torch.randint(0, 2, (n,), generator=g)
        elif name == "ap-multilabel":
            loss_fn = softmetrics.SoftAveragePrecisionLoss(task="multilabel", num_classes=3,
                                                           temperature=0.5)
            y = (torch.rand(n, 3, generator=g) < 0.2).long()
        else:
            loss_fn = softmetrics.SoftCalibratedAveragePrecisionLoss(
                task="multiclass", num_classes=4, temperature=0.2)
            y = torch.randint(0, 4, (n,), generator=g)
        y = y.to(device)
        features = torch.randn(n, 16, generator=g)

        def call(scores):
            return loss_fn(scores.squeeze(-1) if out == 1 else scores, y)
    elif name == "soft-bleu":
        # 512-token sentences: soft counts and totals in the hundreds
        loss_fn, out = softmetrics.SoftBLEULoss(temperature=0.5), 64
        features = torch.randn(2, 512, 16, generator=g)
        ref = torch.randint(1, 64, (2, 2, 512), generator=g).to(device)

        def call(logits):
            return loss_fn(logits, ref)
    elif name == "expected-bleu":
        # sequence log-probabilities of long candidates: -1e3 and below
        loss_fn, out = softmetrics.ExpectedBLEULoss(alpha=0.05), 1
        features = torch.randn(8, 4, 16, generator=g)
        samples = torch.randint(1, 9, (8, 4, 300), generator=g).to(device)
        ref = torch.randint(1, 9, (8, 300), generator=g).to(device)

        def call(log_probs):
            return loss_fn(samples, log_probs.squeeze(-1), ref)
    elif name.startswith("info-nce"):
        # 2048 queries at temperature 0.07: exp(logits) up to e^14, sums of 2048 terms
        chunk = 256 if name.endswith("tiled") else None
        loss_fn, out = softmetrics.InfoNCELoss(temperature=0.07, chunk_size=chunk), 32
        base = torch.randn(2048, 16, generator=g)
        features = torch.cat([base, base + 0.5 * torch.randn(2048, 16, generator=g)])

        def call(embeddings):
            return loss_fn(*embeddings.chunk(2))
    elif name.startswith("siglip"):
        # 1024 x 1024 pairs, logits in [-20, 0]: sums of 1024 softplus terms per row
        chunk = 256 if name.endswith("tiled") else None
        loss_fn, out = softmetrics.SigLIPLoss(chunk_size=chunk).to(device), 32
        base = torch.randn(1024, 16, generator=g)
        features = torch.cat([base, base + 0.5 * torch.randn(1024, 16, generator=g)])

        def call(embeddings):
            return loss_fn(*embeddings.chunk(2))
    else:
        loss_fn = softmetrics.NCELoss(500, 64, torch.softmax(torch.randn(500, generator=g), 0))
        loss_fn.to(device)
        out = 32
        features = torch.randn(512, 16, generator=g)
        weight = (0.1 * torch.randn(500, 32, generator=g)).to(device)
        target = torch.randint(0, 500, (512,), generator=g).to(device)

        def call(hidden):
            rng = torch.Generator(device=device).manual_seed(1)
            return loss_fn(hidden, target, weight, None, generator=rng)
    layer = torch.nn.Linear(16, out).to(device)
    with torch.no_grad():  # torch 2.1's init.normal_ takes no generator
        layer.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    if name == "expected-bleu":
        with torch.no_grad():
            layer.weight.mul_(20.0)
            layer.bias.fill_(-1000.0)
    return features.to(device), layer, call


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("name", LOSSES)
def test_half_inputs_are_computed_in_float32(name, dtype, device):
    """Half inputs give the float32 value of the same (rounded) numbers, and stay within
    the rounding of the inputs of the float32 value."""
    features, layer, call = _loss_case(name, device)
    with torch.no_grad():
        out32 = layer(features)
    half = out32.to(dtype).requires_grad_()
    loss = call(half)
    assert loss.dtype == torch.float32
    # the same numbers in float32: only the order of float32 operations may differ
    torch.testing.assert_close(loss, call(half.detach().float()), atol=1e-5, rtol=1e-5)
    # the rounding of the inputs moves the loss by less than this
    tolerance = 5e-3 if dtype == torch.float16 else 3e-2
    torch.testing.assert_close(loss, call(out32), atol=tolerance, rtol=tolerance)
    (grad,) = torch.autograd.grad(loss, half)
    assert grad.dtype == dtype and _finite(grad)


@pytest.mark.parametrize("name", LOSSES)
def test_autocast_bfloat16(name, device):
    """Under autocast a bf16 layer feeds the loss; the library's own products run in
    float32 (autocast is off inside), so the loss equals the float32 loss of the bf16
    outputs."""
    features, layer, call = _loss_case(name, device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = layer(features)
        assert out.dtype == torch.bfloat16
        loss = call(out)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, call(out.detach().float()), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        reference = call(layer(features))
    torch.testing.assert_close(loss, reference, atol=3e-2, rtol=3e-2)
    loss.backward()
    assert all(_finite(p.grad) for p in layer.parameters())


# --------------------------------------------------------------------------------------
# torch.compile: one graph for forward and backward, with the default validate_args=True
# (the checks that read data are skipped while compiling)
# --------------------------------------------------------------------------------------


def _compile_case(name: str, device: torch.device):
    """(function of a differentiable input, the input): small sizes, every loss, default
    `validate_args`."""
    g = torch.Generator().manual_seed(0)

    def on(t):
        return t.to(device)

    if name == "auroc":
        loss_fn = softmetrics.SoftAUROCLoss(task="binary", temperature=0.5, chunk_size=16)
        y = on(torch.randint(0, 2, (64,), generator=g))
        return (lambda x: loss_fn(x, y)), on(torch.randn(64, generator=g))
    if name == "ap":
        loss_fn = softmetrics.SoftAveragePrecisionLoss(task="multiclass", num_classes=4)
        y = on(torch.randint(0, 4, (64,), generator=g))
        return (lambda x: loss_fn(x, y)), on(torch.randn(64, 4, generator=g))
    if name == "cap":
        loss_fn = softmetrics.SoftCalibratedAveragePrecisionLoss(
            task="multilabel", num_classes=3, average="weighted")
        y = on(torch.randint(0, 2, (64, 3), generator=g))
        return (lambda x: loss_fn(x, y)), on(torch.randn(64, 3, generator=g))
    if name == "soft-bleu":
        loss_fn = softmetrics.SoftBLEULoss()
        ref = on(torch.randint(1, 20, (4, 2, 10), generator=g))
        return (lambda x: loss_fn(x, ref)), on(torch.randn(4, 12, 20, generator=g))
    if name == "expected-bleu":
        # vocab_size given: the first n-gram order sorts without reading the ids
        loss_fn = softmetrics.ExpectedBLEULoss(vocab_size=20)
        samples = on(torch.randint(1, 20, (4, 3, 9), generator=g))
        ref = on(torch.randint(1, 20, (4, 10), generator=g))
        return (lambda x: loss_fn(samples, x, ref)), on(torch.randn(4, 3, generator=g))
    if name == "info-nce":
        loss_fn = softmetrics.InfoNCELoss(chunk_size=16, query_negatives=True,
                                          symmetric=True)
        keys = on(torch.randn(64, 8, generator=g))
        return (lambda x: loss_fn(x, keys)), on(torch.randn(64, 8, generator=g))
    if name == "siglip":
        loss_fn = softmetrics.SigLIPLoss(chunk_size=16).to(device)
        keys = on(torch.randn(64, 8, generator=g))
        return (lambda x: loss_fn(x, keys)), on(torch.randn(64, 8, generator=g))
    loss_fn = softmetrics.NCELoss(30, 5, on(torch.softmax(torch.randn(30, generator=g), 0)))
    weight = on(torch.randn(30, 8, generator=g))
    target = on(torch.randint(0, 30, (16,), generator=g))
    return (lambda x: loss_fn(x, target, weight, None)), on(torch.randn(16, 8, generator=g))


@pytest.mark.compile
@pytest.mark.slow
@pytest.mark.parametrize("name", ["auroc", "ap", "cap", "soft-bleu", "expected-bleu",
                                  "info-nce", "siglip", "nce"])
def test_compile_fullgraph(name, device):
    """Forward and backward compile with no graph break and agree with eager mode (NCE
    draws its noise from the global generator: the same seed, eager random kernels)."""
    torch._dynamo.reset()
    fn, x = _compile_case(name, device)
    compiled = torch.compile(fn, fullgraph=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch._inductor.config.patch(fallback_random=True):
        torch.manual_seed(1)
        a = compiled(xa)
        a.backward()
    torch.manual_seed(1)
    b = fn(xb)
    b.backward()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-6, rtol=1e-5)
