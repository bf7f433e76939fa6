"""torch.compile with the default `validate_args=True`, every family.

The checks that read tensor data (target values, finiteness, token ids, a tensor
temperature's sign, the noise distribution) end in a Python `if` on a device value, which
a graph cannot hold: while compiling they are skipped and the shape, dtype and option
checks remain. These tests trace with the "eager" backend (dynamo only: where a
data-dependent branch fails `fullgraph=True`), a few seconds per case; the slow compile
tests in test_robustness.py and test_fuzz_families.py run the default inductor backend
with the same default `validate_args`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import softmetrics
from softmetrics import _tuning, functional as F
from softmetrics._checks import checks_data

from .listing import list_positives

pytestmark = pytest.mark.compile

# The code for a torch without custom operators (before 2.4, where the losses are not
# compiled: its compiler cannot trace them), tested on a compiler that traces autograd
# Functions writing into `out=` buffers: torch 2.4.1's cannot, 2.9.1's can.
# (`torch.__version__` is a TorchVersion: it compares as a version, "2.13" after "2.9")
traces_the_functions = pytest.mark.skipif(
    torch.__version__ < "2.9", reason="this torch's compiler cannot trace the tiled Functions")


def _case(name: str):
    """(function of one input, the input) with every option at its default, including
    `validate_args=True`; the input is differentiable unless the function is exact."""
    g = torch.Generator().manual_seed(0)
    if name == "f1":
        loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=4, ignore_index=-1)
        y = torch.randint(-1, 4, (32,), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(32, 4, generator=g)
    if name == "mcc-binary":
        loss_fn = softmetrics.SoftMCCLoss(task="binary")
        y = torch.randint(0, 2, (16, 5), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(16, 1, 5, generator=g)
    if name == "top-k":
        loss_fn = softmetrics.SoftTopKAccuracyLoss(k=2, num_classes=5)
        y = torch.randint(0, 5, (24,), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(24, 5, generator=g)
    if name == "jaccard-metric":
        loss_fn = softmetrics.SoftJaccardLoss(task="multilabel", num_classes=3)
        y = torch.randint(0, 2, (20, 3), generator=g)
        return (lambda x: loss_fn.metric(x, y)), torch.randn(20, 3, generator=g)
    if name == "dice-weights-focal":
        loss_fn = softmetrics.SoftDiceLoss(task="multiclass", num_classes=4, ignore_index=0,
                                           class_weights=torch.tensor([1.0, 2.0, 1.0, 0.5]),
                                           gamma=0.75)
        y = torch.randint(0, 3, (32,), generator=g)  # class 3 absent: its weight is relaxed
        return (lambda x: loss_fn(x, y)), torch.randn(32, 4, generator=g)
    if name == "generalized-dice":
        loss_fn = softmetrics.SoftDiceLoss(task="multiclass", num_classes=4,
                                           class_weights="generalized")
        y = torch.randint(0, 3, (2, 6, 6), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(2, 4, 6, 6, generator=g)
    if name == "exact-match":
        loss_fn = softmetrics.SoftExactMatchLoss(task="multilabel", num_classes=3)
        y = torch.randint(0, 2, (20, 3), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(20, 3, generator=g)
    if name == "soft-targets":
        loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=4)
        y = torch.softmax(torch.randn(40, 4, generator=g), 1)
        return (lambda x: loss_fn(x, y)), torch.randn(40, 4, generator=g)
    if name == "partial-auroc":
        loss_fn = softmetrics.SoftAUROCLoss(task="binary", max_fpr=0.2)
        y = torch.randint(0, 2, (32,), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(32, generator=g)
    if name == "auroc":
        loss_fn = softmetrics.SoftAUROCLoss(task="binary")
        y = torch.randint(0, 2, (32,), generator=g)
        return (lambda x: loss_fn(x, y)), torch.randn(32, generator=g)
    if name == "ap":
        y = torch.randint(0, 4, (32,), generator=g)
        return (lambda x: F.soft_average_precision(x, y, task="multiclass", num_classes=4)
                ), torch.randn(32, 4, generator=g)
    if name == "soft-bleu":
        ref = torch.randint(1, 20, (4, 2, 10), generator=g)
        lengths = torch.tensor([12, 7, 0, 3])
        temperature = torch.tensor(0.5)
        return (lambda x: F.soft_bleu_score(x, ref, temperature=temperature,
                                            hyp_lengths=lengths)
                ), torch.randn(4, 12, 20, generator=g)
    if name == "expected-bleu":
        loss_fn = softmetrics.ExpectedBLEULoss()
        samples = torch.randint(1, 20, (4, 3, 9), generator=g)
        ref = torch.randint(1, 20, (4, 10), generator=g)
        return (lambda x: loss_fn(samples, x, ref)), torch.randn(4, 3, generator=g)
    if name == "bleu":
        ref = torch.randint(1, 30, (6, 2, 10), generator=g)
        return (lambda h: F.bleu_score(h, ref)), torch.randint(1, 30, (6, 9), generator=g)
    if name == "info-nce":
        loss_fn = softmetrics.InfoNCELoss(learn_temperature=True)
        keys = torch.randn(16, 8, generator=g)
        return (lambda x: loss_fn(x, keys)), torch.randn(16, 8, generator=g)
    if name == "retrieval":
        keys = torch.randn(16, 8, generator=g)
        negatives = torch.randn(16, 3, 8, generator=g)
        return (lambda q: F.retrieval_accuracy(q, keys, k=2, negatives=negatives)
                ), torch.randn(16, 8, generator=g)
    # NCE draws its noise from the global generator: the same seed gives the same draws
    loss_fn = softmetrics.NCELoss(30, 5, torch.softmax(torch.randn(30, generator=g), 0))
    weight = torch.randn(30, 8, generator=g)
    target = torch.randint(0, 30, (16,), generator=g)
    return (lambda x: loss_fn(x, target, weight, None)), torch.randn(16, 8, generator=g)


# the default run traces one case of each family (the exact BLEU statistics are one
# operator, a short trace); the slow run traces the other cases
FAST = ["f1", "auroc", "info-nce", "bleu", "retrieval"]
MORE = ["mcc-binary", "top-k", "jaccard-metric", "ap", "soft-bleu", "expected-bleu", "nce",
        "dice-weights-focal", "generalized-dice", "exact-match", "partial-auroc",
        "soft-targets"]


def _compiled_equals_eager(name: str) -> None:
    torch._dynamo.reset()
    fn, x = _case(name)
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    if not x.is_floating_point():
        torch.testing.assert_close(compiled(x), fn(x), rtol=0, atol=0)
        return
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(1)
    a = compiled(xa)
    torch.manual_seed(1)
    b = fn(xb)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    if a.requires_grad:
        a.sum().backward()
        b.sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)


@pytest.mark.parametrize("name", FAST)
def test_fullgraph_with_default_validate_args(name):
    """One graph with `validate_args=True` (the default), the value and gradient of eager
    mode."""
    _compiled_equals_eager(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", MORE)
def test_fullgraph_with_default_validate_args_more(name):
    """The other cases: binary (N, 1, ...) logits, top-k, an exact `.metric`, soft BLEU
    with a tensor temperature and hypothesis lengths, expected BLEU and exact BLEU (no
    `vocab_size`: the ids are not read to bound it), retrieval with per-query negatives,
    NCE's noise distribution, multiclass soft targets (compiled, on the plain path:
    `test_compiled_counts_take_the_plain_path`)."""
    _compiled_equals_eager(name)


def _softmax_nodes(graphs) -> int:
    """The row softmaxes (forward) and their backwards in dynamo's graphs and subgraphs."""
    return sum(1 for g in graphs for m in g.modules() if isinstance(m, torch.fx.GraphModule)
               for node in m.graph.nodes
               if node.op == "call_function" and "softmax" in str(node.target))


@pytest.mark.parametrize("soft_targets", [False, True], ids=["labels", "soft-targets"])
def test_compiled_counts_take_the_plain_path(soft_targets, monkeypatch):
    """Inside torch.compile the softmax counts are one softmax and one backward whatever
    the size: the CPU's blocks would be unrolled into the graph, one softmax per block
    (126 blocks at (65536, 1000): minutes of compilation, and a compiled step four to five
    times slower than eager mode's at (4096, 1000)), and the compiler fuses and tiles by
    itself."""
    torch._dynamo.reset()
    monkeypatch.setattr(_tuning, "CPU_BLOCK_ENTRIES", 1 << 13)  # 82 rows of 100 a block
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 100, generator=g)
    y = torch.randint(0, 100, (1024,), generator=g)
    if soft_targets:
        y = torch.nn.functional.one_hot(y, 100).float() * 0.9 + 0.001
    assert not F._classification_counts.small(x)  # eagerly: 13 blocks
    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=100, validate_args=False)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = compiled(xa, y)
    a.backward()
    b = loss_fn(xb, y)
    b.backward()
    assert _softmax_nodes(graphs) <= 2  # the forward's softmax and the backward's
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-9)


def test_dynamic_batch_sizes_compile_once_across_the_plain_path_limit():
    """With `dynamic=True` one graph serves batches on both sides of
    `SMALL_COUNTS_ENTRIES`: asking the size before the compiler would put a guard on it,
    and a second compilation."""
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=10, validate_args=False)
    compiled = torch.compile(loss_fn, backend=backend, dynamic=True)
    limit = _tuning.SMALL_COUNTS_ENTRIES // 10
    for n in (64, 100, limit + 100, 2 * limit):
        x = torch.randn(n, 10, requires_grad=True)
        compiled(x, torch.randint(0, 10, (n,))).backward()
    assert len(graphs) == 1


_COMPILE_WARNINGS = """
import warnings
import torch
from softmetrics import functional as F
x = torch.randn(8, 3, requires_grad=True)
t = torch.randint(0, 3, (8,))
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    for fn in (F.soft_f1_score, F.soft_matthews_corrcoef):
        loss = torch.compile(lambda x: fn(x, t, task="multiclass", num_classes=3),
                             backend="eager", fullgraph=True)
        loss(x).backward()
for w in seen:
    print(f"{w.category.__name__}: {w.message}")
"""


def test_compiling_a_loss_warns_of_nothing():
    """Compiling F1 and MCC (both of `divide`'s and `_correlation`'s denominators) raises
    no warning: the compiler warns of every `functools.cache` it traces through. In a
    process of its own, as the compiler warns once a process."""
    done = subprocess.run([sys.executable, "-c", _COMPILE_WARNINGS], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "", done.stdout


def test_data_checks_are_skipped_only_while_compiling():
    """Eagerly the data is checked; compiled, the value checks are left out and a NaN
    reaches the result, as with `validate_args=False` (never a finite value)."""
    torch._dynamo.reset()
    flag = torch.compile(lambda x: x * checks_data(True), fullgraph=True, backend="eager")
    assert flag(torch.ones(())) == 0 and checks_data(True) and not checks_data(False)
    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=3)
    x = torch.tensor([[0.0, float("nan"), 1.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    with pytest.raises(ValueError, match="SoftF1Loss: expected `input` to be finite"):
        loss_fn(x, y)
    assert torch.isnan(torch.compile(loss_fn, fullgraph=True, backend="eager")(x, y))


# --------------------------------------------------------------------------------------
# the tiled InfoNCE and sigmoid losses inside torch.compile: one operator each, not
# unrolled tile loops

tiles = pytest.importorskip("softmetrics.functional._infonce_tiles")
siglip = pytest.importorskip("softmetrics.functional._siglip_tiles")
needs_operator = pytest.mark.skipif(tiles._OPERATOR is None,
                                    reason="torch.library.custom_op needs torch >= 2.4")


def _graph_targets(graphs) -> list:
    return [node.target for g in graphs for m in g.modules()
            if isinstance(m, torch.fx.GraphModule) for node in m.graph.nodes
            if node.op == "call_function"]


def _one_operator(loss_fn, operator) -> None:
    """Compiled, `loss_fn` on (256, 8) embeddings in 16 x 16 tiles per direction is one
    call of `operator` in the graph, with eager mode's value and gradients (of the
    embeddings, and of the loss's parameters)."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(256, 8, generator=g), torch.randn(256, 8, generator=g)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    qa, qb, ka, kb = (x.clone().requires_grad_() for x in (q, q, k, k))
    a = compiled(qa, ka)
    a.backward()
    grads_a = [p.grad.clone() for p in loss_fn.parameters()]
    loss_fn.zero_grad()
    b = loss_fn(qb, kb)
    b.backward()
    targets = _graph_targets(graphs)
    assert targets.count(operator) == 1
    assert torch.mm not in targets and torch.ops.aten.mm.default not in targets
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(qa.grad, qb.grad, rtol=0, atol=0)
    torch.testing.assert_close(ka.grad, kb.grad, rtol=0, atol=0)
    for p, grad in zip(loss_fn.parameters(), grads_a, strict=True):
        torch.testing.assert_close(grad, p.grad, rtol=0, atol=0)


@needs_operator
@pytest.mark.parametrize("options", [
    dict(symmetric=True),
    dict(query_negatives=True, normalize=False),
    dict(learn_temperature=True),
], ids=["symmetric", "query-negatives", "learned-temperature"])
def test_compiled_tiled_info_nce_is_one_operator(options):
    _one_operator(softmetrics.InfoNCELoss(temperature=0.1, chunk_size=16,
                                          validate_args=False, **options),
                  torch.ops.softmetrics.info_nce_tiles.default)


@needs_operator
def test_compiled_shared_negatives_without_in_batch_ones_are_one_operator():
    """Shared negatives without in-batch negatives take the other tiled route (the
    log-sum-exp over the candidates alone, the positive added outside): one operator call,
    eager mode's value and gradients."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    q, k, neg = (torch.randn(n, 8, generator=g) for n in (96, 96, 200))

    def loss(q, neg):
        return F.info_nce(q, k, negatives=neg, in_batch_negatives=False, chunk_size=16,
                          temperature=0.2, validate_args=False)

    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    qa, qb, na, nb = (x.clone().requires_grad_() for x in (q, q, neg, neg))
    a = torch.compile(loss, fullgraph=True, backend=backend)(qa, na)
    a.backward()
    b = loss(qb, nb)
    b.backward()
    assert _graph_targets(graphs).count(torch.ops.softmetrics.info_nce_tiles.default) == 1
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(qa.grad, qb.grad, rtol=0, atol=0)
    torch.testing.assert_close(na.grad, nb.grad, rtol=0, atol=0)


@needs_operator
@pytest.mark.parametrize("learnable", [True, False], ids=["learned", "fixed"])
def test_compiled_tiled_siglip_is_one_operator(learnable):
    _one_operator(softmetrics.SigLIPLoss(chunk_size=16, learnable=learnable,
                                         validate_args=False),
                  torch.ops.softmetrics.siglip_tiles.default)


@needs_operator
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("passes", [
    ((0, (1,), -1, 0),),  # one direction
    ((0, (1, 0), 40, 0), (1, (0, 1), 40, 0)),  # both, the queries as negatives (self left out)
    ((0, (1, 2), -1, -1),),  # no positive column: the log-sum-exp alone
], ids=["one-way", "symmetric-self", "no-positive"])
def test_the_operators_pass_torch_opcheck(passes, normalize):
    """torch.library.opcheck: schema, fake tensors, autograd registration and tracing of
    both operators (float64, a temperature and one of the tensors without gradient)."""
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(40, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    tensors[0].requires_grad_()
    tau = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    flat = tiles.flat_passes(passes)
    assert tiles.unflat_passes(flat) == passes
    args = (tau, tensors, normalize, 16, 8, torch.float64, flat)
    torch.library.opcheck(torch.ops.softmetrics.info_nce_tiles.default, args)
    out, scales, lses = torch.ops.softmetrics.info_nce_tiles(*args)
    grad = torch.randn(out.shape, generator=g, dtype=torch.float64)
    need = [True, True, False, True]
    # the backward operator is not differentiated itself (a graph being built takes the
    # untiled reference instead): its inputs without gradient
    plain = [t.detach() for t in tensors]
    torch.library.opcheck(torch.ops.softmetrics.info_nce_tiles_backward.default,
                          (grad, tau.detach(), plain, [t.detach() for t in scales],
                           [t.detach() for t in lses], need, normalize, 16, 8,
                           torch.float64, flat))
    # the operator's gradients are the Function's
    x, y = ([t.detach().clone().requires_grad_(want)
             for t, want in zip(tensors, need[1:], strict=True)] for _ in range(2))
    ta, tb = (tau.detach().clone().requires_grad_() for _ in range(2))
    torch.ops.softmetrics.info_nce_tiles(ta, x, normalize, 16, 8, torch.float64,
                                         flat)[0].backward(grad)
    tiles.tiled_info_nce(tb, normalize, 16, 8, torch.float64, passes, *y).backward(grad)
    torch.testing.assert_close(ta.grad, tb.grad, rtol=0, atol=0)
    for u, v in zip(x, y, strict=True):
        assert (u.grad is None) == (v.grad is None)
        if u.grad is not None:
            torch.testing.assert_close(u.grad, v.grad, rtol=0, atol=0)


@traces_the_functions
def test_without_the_operators_the_functions_are_traced(monkeypatch):
    """Without custom operators the compiler traces the autograd Functions, tile loops
    unrolled, to the same values and gradients."""
    monkeypatch.setattr(tiles, "_OPERATOR", None)
    monkeypatch.setattr(siglip, "_OPERATOR", None)
    _compiled_equals_eager("info-nce")
    torch._dynamo.reset()
    loss_fn = softmetrics.SigLIPLoss(chunk_size=32, validate_args=False)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g)
    qa, qb = q.clone().requires_grad_(), q.clone().requires_grad_()
    a = torch.compile(loss_fn, fullgraph=True, backend="eager")(qa, k)
    a.backward()
    b = loss_fn(qb, k)
    b.backward()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(qa.grad, qb.grad, rtol=1e-5, atol=1e-8)


@needs_operator
def test_the_operator_has_first_and_second_derivatives():
    """gradcheck through the backward operator; gradgradcheck through the untiled
    reference that a graph being built takes (float64, 3 x 3 tiles, symmetric)."""
    g = torch.Generator().manual_seed(1)
    q = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    flat = tiles.flat_passes(((0, (1,), -1, 0), (1, (0,), -1, 0)))

    def loss(tau, q, k):
        return torch.ops.softmetrics.info_nce_tiles(tau, [q, k], True, 4, 4, torch.float64,
                                                    flat)[0]

    assert torch.autograd.gradcheck(loss, (tau, q, k))
    assert torch.autograd.gradgradcheck(loss, (tau, q, k))


@needs_operator
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("offset", [0, 5])
def test_the_siglip_operators_pass_opcheck_and_have_derivatives(normalize, offset):
    """The sigmoid loss's operators: opcheck of both (float64, the bias without
    gradient), gradcheck through the backward operator and gradgradcheck through the
    untiled reference (3 x 3 tiles; with `offset` the positive of query i is key i + 5,
    as for one process of several)."""
    g = torch.Generator().manual_seed(2)
    q = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(17, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-1.0, dtype=torch.float64)
    op, op_backward = (torch.ops.softmetrics.siglip_tiles,
                       torch.ops.softmetrics.siglip_tiles_backward)
    args = (t, b, q, k, normalize, 4, 4, torch.float64, offset)
    torch.library.opcheck(op.default, args)
    out, u, v = op(*args)
    grad = torch.randn(out.shape, generator=g, dtype=torch.float64)
    torch.library.opcheck(op_backward.default,
                          (grad, t.detach(), b, q.detach(), k.detach(), u.detach(),
                           v.detach(), [True, False, True, True], normalize, 4, 4,
                           torch.float64, offset))

    def loss(t, q, k):
        return op(t, b, q, k, normalize, 4, 4, torch.float64, offset)[0]

    assert torch.autograd.gradcheck(loss, (t, q, k))
    assert torch.autograd.gradgradcheck(loss, (t, q, k))


# the ranking and retrieval losses' pairwise tiles inside torch.compile: one operator per
# statistic, not unrolled tile loops

ranking = pytest.importorskip("softmetrics.functional._ranking_tiles")
needs_ranking_operators = pytest.mark.skipif(
    ranking._OPERATORS is None, reason="torch.library.custom_op needs torch >= 2.4")


def _ranking_case(name: str, chunk: int = 16):
    """(loss of one input, the input, the operator it runs): 256 samples a column, in
    tiles of `chunk` rows."""
    g = torch.Generator().manual_seed(3)
    negatives = torch.ops.softmetrics.negatives_above.default
    positives = torch.ops.softmetrics.positives_above.default
    if name == "binary-ap":
        y = torch.randint(0, 2, (256,), generator=g)
        loss_fn = softmetrics.SoftAveragePrecisionLoss(task="binary", chunk_size=chunk)
        return (lambda x: loss_fn(x, y)), torch.randn(256, generator=g), negatives
    if name == "partial-auroc":
        y = torch.randint(0, 2, (256, 2), generator=g)
        loss_fn = softmetrics.SoftAUROCLoss(task="multilabel", num_classes=2, max_fpr=0.3,
                                            chunk_size=chunk)
        return (lambda x: loss_fn(x, y)), torch.randn(256, 2, generator=g), negatives
    if name in ("multiclass-ap", "micro-cap"):
        y = torch.randint(-1, 4, (256,), generator=g)
        loss_fn = (softmetrics.SoftAveragePrecisionLoss if name == "multiclass-ap"
                   else softmetrics.SoftCalibratedAveragePrecisionLoss)(
            task="multiclass", num_classes=4, ignore_index=-1, chunk_size=chunk,
            average="macro" if name == "multiclass-ap" else "micro")
        return (lambda x: loss_fn(x, y)), torch.randn(256, 4, generator=g), positives
    # graded relevance: only the pairs of different levels count
    rel = torch.randint(0, 3, (2, 256), generator=g)
    return (lambda x: F.soft_ndcg(x, rel, k=10, temperature=0.5, chunk_size=chunk)
            ), torch.randn(2, 256, generator=g), negatives


@needs_ranking_operators
@pytest.mark.parametrize("name", ["binary-ap", "partial-auroc", "multiclass-ap", "micro-cap",
                                  "ndcg-graded"])
def test_compiled_ranking_losses_are_one_operator(name):
    """Compiled, a ranking or retrieval loss is one call of its statistic's operator, in a
    graph that does not grow with the number of tiles (16 tiles or 4), with eager mode's
    value and gradient. Traced instead, the tile loops were unrolled: for a binary
    column of 16384 samples, 256 tiles, whose compilation took over two minutes on the
    CPU."""
    sizes = []
    for chunk in (16, 64):
        targets = _compiled_ranking_graph(name, chunk)
        assert targets.count(_ranking_case(name)[2]) == 1
        sizes.append(len(targets))
    assert sizes[0] == sizes[1]


def _compiled_ranking_graph(name: str, chunk: int) -> list:
    """The calls in dynamo's graph of the compiled case, once its value and gradient are
    found equal to eager mode's."""
    torch._dynamo.reset()
    fn, x, _ = _ranking_case(name, chunk)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = torch.compile(fn, fullgraph=True, backend=backend)(xa)
    a.backward()
    b = fn(xb)
    b.backward()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
    return _graph_targets(graphs)


def _ranking_operands(rows_k: int, level: bool):
    """float64 scores (K, 24) and 0/1 negatives; levels in {0, 1, 2} when asked."""
    g = torch.Generator().manual_seed(4)
    u = torch.randn(rows_k, 24, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randint(0, 2, (rows_k, 24), generator=g).double()
    lv = torch.randint(0, 3, (rows_k, 24), generator=g).double() if level else None
    return g, u, neg, lv


@needs_ranking_operators
@pytest.mark.parametrize("rows_k", [1, 3])
@pytest.mark.parametrize("level", [False, True], ids=["binary", "levels"])
@pytest.mark.parametrize("listed", [False, True], ids=["every-row", "positives"])
def test_the_negatives_above_operators_pass_opcheck_and_have_derivatives(rows_k, level,
                                                                         listed):
    """`softmetrics::negatives_above` and its backward: opcheck (float64, tiles of 5
    rows, the last one short), the Function's value and gradient, gradcheck through the
    backward operator and gradgradcheck through the out-of-place tiles; for every row,
    and for the positives only (a few entries of each row neither positive nor
    negative)."""
    g, u, neg, lv = _ranking_operands(rows_k, level)
    pos = None
    if listed:
        pos = 1 - neg
        pos[torch.rand(pos.shape, generator=g) < 0.2] = 0
    op = torch.ops.softmetrics.negatives_above
    torch.library.opcheck(op.default, (u, neg, 5, lv, pos))
    out = op(u, neg, 5, lv, pos)
    grad = torch.randn(out.shape, generator=g, dtype=torch.float64)
    torch.library.opcheck(torch.ops.softmetrics.negatives_above_backward.default,
                          (grad, u.detach(), neg, lv, 5, pos))
    v = u.detach().clone().requires_grad_()
    torch.testing.assert_close(out, ranking.NegativesAbove.apply(v, neg, 5, lv, pos),
                               rtol=0, atol=0)
    (g_op,) = torch.autograd.grad(out, u, grad)
    torch.testing.assert_close(
        g_op, torch.autograd.grad(ranking.NegativesAbove.apply(v, neg, 5, lv, pos), v,
                                  grad)[0],
        rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda u: op(u, neg, 5, lv, pos), (u,))
    assert torch.autograd.gradgradcheck(lambda u: op(u, neg, 5, lv, pos), (u,))


@needs_ranking_operators
@pytest.mark.parametrize("rows_k", [1, 3])
def test_the_positives_above_operators_pass_opcheck_and_have_derivatives(rows_k):
    """`softmetrics::positives_above` and its backward, over listed entries (one per
    sample, in a random column of K = 3, or in the one row of K = 1), as above."""
    g, u, neg, _ = _ranking_operands(rows_k, False)
    idx = torch.arange(24)
    cols = torch.randint(0, rows_k, (24,), generator=g)
    op = torch.ops.softmetrics.positives_above
    torch.library.opcheck(op.default, (u, neg, cols, idx, 5))
    out = op(u, neg, cols, idx, 5)
    grad = torch.randn(out.shape, generator=g, dtype=torch.float64)
    torch.library.opcheck(torch.ops.softmetrics.positives_above_backward.default,
                          (grad, u.detach(), neg, cols, idx, 5))
    v = u.detach().clone().requires_grad_()
    ref = ranking.PositivesAbove.apply(v, neg, cols, idx, 5)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(torch.autograd.grad(out, u, grad)[0],
                               torch.autograd.grad(ref, v, grad)[0], rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda u: op(u, neg, cols, idx, 5), (u,))
    assert torch.autograd.gradgradcheck(lambda u: op(u, neg, cols, idx, 5), (u,))


@traces_the_functions
def test_without_the_ranking_operators_the_functions_are_traced(monkeypatch):
    """Without custom operators the compiler traces `NegativesAbove` and `PositivesAbove`,
    tile loops unrolled (a graph that grows with the tiles), to eager mode's values and
    gradients."""
    monkeypatch.setattr(ranking, "_OPERATORS", None)
    # traced, `NegativesAbove` computes every row (the listing's sizes would be data),
    # which eager mode then must too, for the same sums
    list_positives(monkeypatch, False)
    for name in ("binary-ap", "multiclass-ap"):
        unrolled, fewer = (len(_compiled_ranking_graph(name, chunk)) for chunk in (16, 64))
        assert unrolled > fewer


@needs_ranking_operators
def test_dynamic_sizes_compile_the_ranking_operator_once():
    """With `dynamic=True` one graph serves every number of samples, the operator taking
    the number of tiles at run time: eager mode's value at each."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    loss_fn = softmetrics.SoftAveragePrecisionLoss(task="binary", chunk_size=64,
                                                   validate_args=False)
    compiled = torch.compile(loss_fn, backend=counter, dynamic=True, fullgraph=True)
    g = torch.Generator().manual_seed(5)
    for n in (300, 500, 900):
        x, y = torch.randn(n, generator=g), torch.randint(0, 2, (n,), generator=g)
        torch.testing.assert_close(compiled(x, y), loss_fn(x, y), rtol=0, atol=0)
    assert counter.frame_count == 1


@pytest.mark.parametrize("name", ["f1", "mcc-binary", "auroc", "ap"])
def test_compiled_running_statistics_give_eager_gradients_from_the_first_step(name):
    """With `momentum`, three compiled training steps give eager mode's losses, gradients
    and running statistics. The first step reads the running statistics' flag (not yet
    initialised: the batch alone, the full gradient) and then sets it; AOTAutograd's
    partitioner recomputed that read in the backward pass, after the write, and scaled
    the first step's gradient by `1 - momentum`."""
    torch._dynamo.reset()
    cls, options, shape, classes = {
        "f1": (softmetrics.SoftF1Loss, dict(task="multiclass", num_classes=4), (64, 4), 4),
        "mcc-binary": (softmetrics.SoftMCCLoss, dict(task="binary"), (64,), 2),
        "auroc": (softmetrics.SoftAUROCLoss, dict(task="binary", chunk_size=16), (64,), 2),
        "ap": (softmetrics.SoftAveragePrecisionLoss,
               dict(task="multiclass", num_classes=4, chunk_size=16), (64, 4), 4),
    }[name]
    eager, module = (cls(momentum=0.9, validate_args=False, **options) for _ in range(2))
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    g = torch.Generator().manual_seed(6)
    for _ in range(3):
        x = torch.randn(shape, generator=g)
        y = torch.randint(0, classes, shape[:1], generator=g)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        a, b = compiled(xa, y), eager(xb, y)
        a.backward()
        b.backward()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
    for key, value in eager.state_dict().items():
        torch.testing.assert_close(module.state_dict()[key], value, rtol=0, atol=0)


@needs_operator
@pytest.mark.parametrize("negatives", [None, "shared"])
def test_compiled_retrieval_accuracy_is_one_operator(negatives, monkeypatch):
    """Compiled, the exact retrieval accuracy's tiles of queries are one call of
    `softmetrics::retrieval_tiles`, no matrix product in the graph, which does not grow
    with the number of tiles (16 or 4), and eager mode's value."""
    g = torch.Generator().manual_seed(7)
    q, k = torch.randn(256, 8, generator=g), torch.randn(256, 8, generator=g)
    neg = None if negatives is None else torch.randn(64, 8, generator=g)
    q[3] = q[5]  # a query tied with another: ties are shared

    def fn(q):
        return F.retrieval_accuracy(q, k, k=3, negatives=neg, query_negatives=True)

    sizes = []
    for rows in (16, 64):
        candidates = 2 * 256 + (0 if neg is None else 64)
        monkeypatch.setattr(_tuning, "INFONCE_CPU_TILE_ELEMENTS", rows * candidates)
        torch._dynamo.reset()
        graphs = []

        def backend(gm, example_inputs, graphs=graphs):
            graphs.append(gm)
            return gm.forward

        torch.testing.assert_close(torch.compile(fn, fullgraph=True, backend=backend)(q),
                                   fn(q), rtol=0, atol=0)
        targets = _graph_targets(graphs)
        assert targets.count(torch.ops.softmetrics.retrieval_tiles.default) == 1
        assert not any("matmul" in str(t) for t in targets)
        sizes.append(len(targets))
    assert sizes[0] == sizes[1]


@needs_operator
@pytest.mark.parametrize("candidates", [True, False])
def test_the_retrieval_operator_passes_opcheck(candidates):
    """`softmetrics::retrieval_tiles` (no gradient): schema, fake tensors and tracing,
    with candidates and without (per-query negatives only: no tiles, counts of 0)."""
    g = torch.Generator().manual_seed(8)
    q, cand = torch.randn(20, 4, generator=g), torch.randn(45, 4, generator=g)
    keys = torch.randn(20, 4, generator=g)
    args = (q, cand if candidates else None, keys, 25, 5, candidates, 6)
    torch.library.opcheck(torch.ops.softmetrics.retrieval_tiles.default, args)
    # without in-batch candidates the tiles' keys join their products
    torch.library.opcheck(torch.ops.softmetrics.retrieval_tiles.default,
                          (q, cand, keys, -1, 0, False, 6))
    if not candidates:
        greater, equal, unordered, positive = torch.ops.softmetrics.retrieval_tiles(*args)
        assert not greater.any() and not equal.any() and not unordered.any()
        torch.testing.assert_close(positive, (q * keys).sum(1), rtol=0, atol=0)


@needs_operator
@pytest.mark.parametrize("name", ["bleu", "expected-bleu"])
def test_compiled_bleu_statistics_are_one_operator(name, monkeypatch):
    """Compiled, the exact BLEU statistics (of `bleu_score`, and of the samples of
    `ExpectedBLEULoss`) are one call of `softmetrics::bleu_stats`, in a graph that does not
    grow with the CPU's tiles of sentences (6 or 2 for `bleu_score`), with eager mode's value (and
    gradient). Traced, each tile's n-gram sorts and counts were unrolled into the graph:
    at 16384 sentences of 32 tokens and two references (12 tiles) compiling `bleu_score`
    took 53 s on the CPU."""
    g = torch.Generator().manual_seed(9)
    ref = torch.randint(1, 12, (48, 2, 10), generator=g)
    if name == "bleu":
        x = torch.randint(1, 12, (48, 9), generator=g)

        def fn(h):
            return F.bleu_score(h, ref)
    else:
        loss_fn = softmetrics.ExpectedBLEULoss()
        samples = torch.randint(1, 12, (16, 3, 9), generator=g)
        x = torch.randn(16, 3, generator=g)

        def fn(h):
            return loss_fn(samples, h, ref[:16, 0])

    sizes = []
    for rows in (8, 24):
        monkeypatch.setattr(_tuning, "BLEU_CPU_TILE_ELEMENTS", rows * 29)
        torch._dynamo.reset()
        graphs = []

        def backend(gm, example_inputs, graphs=graphs):
            graphs.append(gm)
            return gm.forward

        xa, xb = x.clone(), x.clone()
        if x.is_floating_point():
            xa.requires_grad_(), xb.requires_grad_()
        a = torch.compile(fn, fullgraph=True, backend=backend)(xa)
        b = fn(xb)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        if x.is_floating_point():
            a.backward()
            b.backward()
            torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
        targets = _graph_targets(graphs)
        assert targets.count(torch.ops.softmetrics.bleu_stats.default) == 1
        sizes.append(len(targets))
    assert sizes[0] == sizes[1]


@needs_operator
@pytest.mark.parametrize("vocab_size", [None, 12])
def test_the_bleu_statistics_operator_passes_opcheck(vocab_size):
    g = torch.Generator().manual_seed(10)
    hyp = torch.randint(0, 12, (10, 7), generator=g)
    ref = torch.randint(0, 12, (10, 3, 8), generator=g)
    torch.library.opcheck(torch.ops.softmetrics.bleu_stats.default,
                          (hyp, ref, 0, 4, vocab_size))


@traces_the_functions
def test_without_the_exact_operators_the_tiles_are_traced(monkeypatch):
    """Without custom operators the compiler traces the exact BLEU statistics and the
    retrieval accuracy's tiles, to eager mode's values."""
    text = pytest.importorskip("softmetrics.functional._text_core")
    contrastive = pytest.importorskip("softmetrics.functional._contrastive_core")
    monkeypatch.setattr(text, "_STATS_OPERATOR", None)
    monkeypatch.setattr(contrastive, "_RETRIEVAL_OPERATOR", None)
    for name in ("bleu", "retrieval"):
        _compiled_equals_eager(name)


# --------------------------------------------------------------------------------------
# no loss unrolls a loop whose length grows with the batch into the compiled graph


def _sized_case(name: str, n: int):
    """(function of one input, the input) of `n` samples (sentences, queries)."""
    g = torch.Generator().manual_seed(11)
    kw = dict(validate_args=False)
    if name in ("f1", "kappa", "lovasz", "top-k", "mcc-multilabel", "exact-match", "auroc",
                "ap", "cap-micro"):
        multilabel = name in ("mcc-multilabel", "exact-match", "auroc")
        loss_fn = {
            "f1": lambda: softmetrics.SoftF1Loss(task="multiclass", num_classes=5, **kw),
            "kappa": lambda: softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=5,
                                                            weights="quadratic",
                                                            **kw),
            "lovasz": lambda: softmetrics.LovaszLoss(task="multiclass", num_classes=5, **kw),
            "top-k": lambda: softmetrics.SoftTopKAccuracyLoss(k=2, num_classes=5, **kw),
            "mcc-multilabel": lambda: softmetrics.SoftMCCLoss(task="multilabel",
                                                              num_classes=5, **kw),
            "exact-match": lambda: softmetrics.SoftExactMatchLoss(task="multilabel",
                                                                  num_classes=5, **kw),
            "auroc": lambda: softmetrics.SoftAUROCLoss(task="multilabel", num_classes=5, **kw),
            "ap": lambda: softmetrics.SoftAveragePrecisionLoss(task="multiclass",
                                                               num_classes=5, **kw),
            "cap-micro": lambda: softmetrics.SoftCalibratedAveragePrecisionLoss(
                task="multiclass", num_classes=5, average="micro", **kw),
        }[name]()
        y = (torch.randint(0, 2, (n, 5), generator=g) if multilabel
             else torch.randint(0, 5, (n,), generator=g))
        return (lambda x: loss_fn(x, y)), torch.randn(n, 5, generator=g)
    if name == "ndcg":
        rel = torch.randint(0, 3, (4, n), generator=g)
        loss_fn = softmetrics.SoftNDCGLoss(k=5, **kw)
        return (lambda x: loss_fn(x, rel)), torch.randn(4, n, generator=g)
    if name in ("info-nce", "siglip", "retrieval"):
        keys = torch.randn(n, 8, generator=g)
        if name == "retrieval":
            return (lambda q: F.retrieval_accuracy(q, keys, k=2, **kw)
                    ), torch.randn(n, 8, generator=g)
        loss_fn = (softmetrics.InfoNCELoss(symmetric=True, **kw) if name == "info-nce"
                   else softmetrics.SigLIPLoss(**kw))
        return (lambda q: loss_fn(q, keys)), torch.randn(n, 8, generator=g)
    if name == "nce":
        loss_fn = softmetrics.NCELoss(30, 5, **kw)
        weight = torch.randn(30, 8, generator=g)
        target = torch.randint(0, 30, (n,), generator=g)
        return (lambda x: loss_fn(x, target, weight, None)), torch.randn(n, 8, generator=g)
    ref = torch.randint(1, 20, (n, 2, 10), generator=g)
    if name == "soft-bleu":
        loss_fn = softmetrics.SoftBLEULoss(**kw)
        return (lambda x: loss_fn(x, ref)), torch.randn(n, 9, 20, generator=g)
    if name == "expected-bleu":
        loss_fn = softmetrics.ExpectedBLEULoss(**kw)
        samples = torch.randint(1, 20, (n, 3, 9), generator=g)
        return (lambda x: loss_fn(samples, x, ref[:, 0])), torch.randn(n, 3, generator=g)
    return (lambda h: F.bleu_score(h, ref, **kw)), torch.randint(1, 20, (n, 9), generator=g)


@pytest.mark.parametrize("name", [
    "f1", "kappa", "lovasz", "top-k", "mcc-multilabel", "exact-match", "auroc", "ap",
    "cap-micro", "ndcg", "info-nce", "siglip", "retrieval", "nce", "soft-bleu",
    "expected-bleu", "bleu"])
def test_no_compiled_graph_grows_with_the_batch(name, monkeypatch):
    """With every block and tile size of `_tuning` made tiny, so that eager mode works in
    many pieces, one loss of each kind compiles to a graph of the same size for 32 and
    128 samples: whatever runs piece by piece is inside an operator (or one piece under
    the compiler), never a loop unrolled into the graph, which makes compilation take
    minutes at real sizes."""
    for constant, value in [("CPU_BLOCK_ENTRIES", 16), ("DEVICE_BLOCK_ENTRIES", 16),
                            ("SMALL_COUNTS_ENTRIES", 0), ("BLEU_CPU_TILE_ELEMENTS", 64),
                            ("RANKING_TILE_ELEMENTS", 256), ("INFONCE_AUTO_TILE_ELEMENTS", 64),
                            ("INFONCE_CPU_TILE_ELEMENTS", 256), ("INFONCE_MIN_CHUNK", 8)]:
        monkeypatch.setattr(_tuning, constant, value)
    sizes = []
    for n in (32, 128):
        torch._dynamo.reset()
        fn, x = _sized_case(name, n)
        graphs = []

        def backend(gm, example_inputs, graphs=graphs):
            graphs.append(gm)
            return gm.forward

        if x.is_floating_point():
            x.requires_grad_()
        torch.manual_seed(0)
        a = torch.compile(fn, fullgraph=True, backend=backend, dynamic=False)(x)
        torch.manual_seed(0)
        torch.testing.assert_close(a, fn(x), rtol=1e-6, atol=1e-6)
        sizes.append(len(_graph_targets(graphs)))
    assert sizes[0] == sizes[1], sizes
