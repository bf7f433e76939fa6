"""Every loss under `torch.func`: `grad`, `jacrev`, `jvp`, `vmap`, `hessian`, and
forward-mode AD with dual tensors.

The library's autograd Functions (hand-written backwards, tiles recomputed) define no
`setup_context`, batching rule or forward-mode derivative; inside a transform the same
values come from the plain operations they are tested against. So each transform is
checked against the library outside it: `grad` against `.backward()` (through the fused
Functions), `jvp` against the gradient along a direction, `vmap` against a loop of calls,
`hessian` against the Functions' own double backward (`create_graph=True`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from sklearn.metrics import roc_auc_score
from torch.func import functional_call, grad, hessian, jacrev, jvp, vmap

import softmetrics
from softmetrics.functional import soft_f1_score

# vmap's notes on an operation it batches by a loop (an in-place scatter of the ranking
# and retrieval ranks) and on a copy it makes: speed notes of torch's, not failures
pytestmark = [pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.searchsorted.*non-contiguous")]

Case = tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]

N, C = 12, 4

CLASSIFICATION = ["SoftAccuracyLoss", "SoftDiceLoss", "SoftF1Loss", "SoftIoULoss",
                  "SoftJaccardLoss", "SoftMCCLoss", "SoftPrecisionLoss", "SoftRecallLoss"]
RETRIEVAL = ["SoftMRRLoss", "SoftNDCGLoss", "SoftRetrievalAPLoss"]


class _Metric(torch.nn.Module):
    """A loss's exact metric (`.metric`) called as the loss is: `NCELoss`'s takes no
    generator."""

    def __init__(self, loss: torch.nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, *args: object, generator: object = None) -> torch.Tensor:
        return self.loss.metric(*args)


def _cases(device: torch.device, metric: bool = False) -> dict[str, Case]:
    """name -> (loss of one float64 input, the input): every Loss of the package, on
    small inputs, with the tiled paths forced where a loss has them; with `metric`, its
    exact metric instead."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device)

    z = randn(N, C)
    y = (torch.arange(N) % C).to(device)
    labels = (torch.rand(N, C, generator=g) < 0.4).long()
    labels[0], labels[1] = 1, 0  # every label has a positive and a negative
    labels = labels.to(device)
    binary = (torch.arange(N) % 3 == 0).long().to(device)
    S = softmetrics
    out: dict[str, Case] = {}

    def add(name: str, loss: torch.nn.Module, call: Callable[..., torch.Tensor],
            x: torch.Tensor) -> None:
        loss = loss.to(device)  # learned parameters (SigLIP's) and buffers
        module = _Metric(loss) if metric else loss
        out[name] = (lambda t: call(module, t), x)

    for name in CLASSIFICATION:
        loss = getattr(S, name)
        add(f"{name}-multiclass", loss(task="multiclass", num_classes=C),
            lambda m, t: m(t, y), z)
        add(f"{name}-multilabel", loss(task="multilabel", num_classes=C),
            lambda m, t: m(t, labels), z)
    add("SoftF1Loss-micro", S.SoftF1Loss(task="multiclass", num_classes=C, average="micro"),
        lambda m, t: m(t, y), z)
    add("SoftF1Loss-soft-targets", S.SoftF1Loss(task="multiclass", num_classes=C),
        lambda m, t: m(t, torch.softmax(z * 0.5, 1)), z)
    add("SoftFBetaLoss", S.SoftFBetaLoss(beta=2.0, task="binary"),
        lambda m, t: m(t[:, 0], binary), z)
    add("SoftTverskyLoss", S.SoftTverskyLoss(alpha=0.3, beta=0.7, gamma=0.75,
                                             task="multiclass", num_classes=C),
        lambda m, t: m(t, y), z)
    add("SoftTopKAccuracyLoss", S.SoftTopKAccuracyLoss(num_classes=C, k=2),
        lambda m, t: m(t, y), z)
    add("SoftCohenKappaLoss", S.SoftCohenKappaLoss(task="multiclass", num_classes=C,
                                                   weights="quadratic"),
        lambda m, t: m(t, y), z)
    add("SoftExactMatchLoss", S.SoftExactMatchLoss(task="multilabel", num_classes=C),
        lambda m, t: m(t, labels), z)
    add("LovaszLoss", S.LovaszLoss(task="multiclass", num_classes=C), lambda m, t: m(t, y), z)
    # ranking: a binary column, labels, and the positives of multiclass targets
    add("SoftAUROCLoss", S.SoftAUROCLoss(task="binary", chunk_size=4),
        lambda m, t: m(t[:, 0], binary), z)
    add("SoftAUROCLoss-multilabel", S.SoftAUROCLoss(task="multilabel", num_classes=C,
                                                    max_fpr=0.5),
        lambda m, t: m(t, labels), z)
    add("SoftAveragePrecisionLoss", S.SoftAveragePrecisionLoss(
        task="multiclass", num_classes=C, chunk_size=4), lambda m, t: m(t, y), z)
    add("SoftCalibratedAveragePrecisionLoss", S.SoftCalibratedAveragePrecisionLoss(
        task="binary"), lambda m, t: m(t[:, 0], binary), z)
    # retrieval: 3 queries of 4 items, graded relevance for NDCG
    relevant = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]], device=device)
    graded = torch.tensor([[2, 0, 1, 0], [0, 3, 0, 1], [1, 2, 0, 0]], device=device)
    for name in RETRIEVAL:
        target = graded if name == "SoftNDCGLoss" else relevant
        add(name, getattr(S, name)(), lambda m, t, r=target: m(t[:3], r), z)
    add("SoftPrecisionAtKLoss", S.SoftPrecisionAtKLoss(k=2), lambda m, t: m(t[:3], relevant),
        z)
    add("SoftRecallAtKLoss", S.SoftRecallAtKLoss(k=2), lambda m, t: m(t[:3], relevant), z)
    # contrastive: 4 pairs, untiled and in tiles of 2 candidates
    emb = randn(8, 5)
    add("InfoNCELoss", S.InfoNCELoss(symmetric=True), lambda m, t: m(t[:4], t[4:]), emb)
    add("InfoNCELoss-tiled", S.InfoNCELoss(chunk_size=2, symmetric=True),
        lambda m, t: m(t[:4], t[4:]), emb)
    add("SigLIPLoss", S.SigLIPLoss(), lambda m, t: m(t[:4], t[4:]), emb)
    add("SigLIPLoss-tiled", S.SigLIPLoss(chunk_size=2), lambda m, t: m(t[:4], t[4:]), emb)
    weight, classes = randn(20, 5), (torch.arange(8) % 20).to(device)
    nce = S.NCELoss(20, 6, torch.full((20,), 0.05, dtype=torch.float64)).to(device)
    add("NCELoss", nce, lambda m, t: m(t, classes, weight, None,
                                      generator=torch.Generator(device).manual_seed(3)), emb)
    # text: 2 sentences of 6 tokens over 9 ids
    logits = randn(2, 6, 9)
    ref = torch.randint(1, 9, (2, 6), generator=g).to(device)
    samples = torch.randint(1, 9, (2, 3, 6), generator=g).to(device)
    add("SoftBLEULoss", S.SoftBLEULoss(), lambda m, t: m(t, ref), logits)
    add("ExpectedBLEULoss", S.ExpectedBLEULoss(), lambda m, t: m(samples, t[:, :3, 0], ref),
        logits)
    return out


NAMES = list(_cases(torch.device("cpu")))


def _backward(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    leaf = z.clone().requires_grad_()
    f(leaf).backward()
    assert leaf.grad is not None
    return leaf.grad


def test_every_loss_of_the_package_has_a_case():
    losses = {name for name in softmetrics.__all__ if name.endswith("Loss")}
    covered = {name.split("-")[0] for name in NAMES}
    assert covered == losses, losses ^ covered


@pytest.mark.parametrize("name", NAMES)
def test_grad_and_jacrev_equal_backward(name, device):
    f, z = _cases(device)[name]
    expected = _backward(f, z)
    torch.testing.assert_close(grad(f)(z), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jacrev(f)(z), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_batched_gradients_of_autograd_equal_backward(name, device):
    """`torch.autograd.grad(..., is_grads_batched=True)` (what
    `torch.autograd.functional.jacobian(..., vectorize=True)` does) vmaps the Functions'
    backward over the gradients, which then takes its plain path."""
    f, z = _cases(device)[name]
    leaf = z.clone().requires_grad_()
    out = f(leaf)
    seeds = torch.tensor([1.0, -0.5, 2.0], dtype=out.dtype, device=device)
    (batched,) = torch.autograd.grad(out, leaf, seeds, is_grads_batched=True)
    expected = _backward(f, z)
    torch.testing.assert_close(batched, seeds.view(-1, *[1] * z.ndim) * expected,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_jvp_is_the_gradient_along_a_direction(name, device):
    f, z = _cases(device)[name]
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(5),
                    dtype=z.dtype).to(device)
    value, tangent = jvp(f, (z,), (v,))
    torch.testing.assert_close(value, f(z), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tangent, (_backward(f, z) * v).sum(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_equals_a_loop_of_calls(name, device):
    """A batch of inputs (the data checks, which read data, are left out under vmap)."""
    f, z = _cases(device)[name]
    batch = torch.stack([z, z * 0.5 + 0.25, -z])
    # the noise of NCE is drawn by one generator, seeded the same in every call
    randomness = "same" if name == "NCELoss" else "error"
    torch.testing.assert_close(vmap(f, randomness=randomness)(batch),
                               torch.stack([f(x) for x in batch]), rtol=1e-12, atol=1e-12)
    grads = vmap(grad(f), randomness=randomness)(batch)
    torch.testing.assert_close(grads, torch.stack([_backward(f, x) for x in batch]),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_of_the_exact_metric_equals_a_loop(name, device):
    """The exact metrics (`.metric`, temperature 0) batch too: bootstrap replicates of an
    evaluation, say, in one call."""
    f, z = _cases(device, metric=True)[name]
    batch = torch.stack([z, z * 0.5 + 0.25, -z, z.round()])  # the last one with ties
    torch.testing.assert_close(vmap(f)(batch), torch.stack([f(x) for x in batch]),
                               rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", ["SoftF1Loss-multiclass", "SoftMCCLoss-multilabel",
                                  "SoftTopKAccuracyLoss", "SoftCohenKappaLoss",
                                  "SoftAUROCLoss", "SoftAveragePrecisionLoss", "SoftNDCGLoss",
                                  "InfoNCELoss-tiled", "SigLIPLoss-tiled", "SoftBLEULoss"])
def test_hessian_equals_the_double_backward_of_the_functions(name, device):
    """`torch.func.hessian` (forward over reverse, plain operations) against
    `torch.autograd.functional.hessian`, which differentiates the fused Functions' backward
    a second time (their `create_graph=True` path): two independent second derivatives."""
    f, z = _cases(device)[name]
    expected = torch.autograd.functional.hessian(f, z)
    torch.testing.assert_close(hessian(f)(z), expected, rtol=1e-8, atol=1e-10)
    # autograd's own vectorised Hessian: batched gradients through the double backward
    vectorized = torch.autograd.functional.hessian(f, z, vectorize=True)
    torch.testing.assert_close(vectorized, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["SoftF1Loss-multiclass", "SoftAUROCLoss",
                                  "InfoNCELoss-tiled", "SoftBLEULoss"])
def test_forward_mode_dual_tensors(name, device):
    """`torch.autograd.forward_ad` outside `torch.func`, on an input that also requires a
    gradient (which would otherwise take the Functions)."""
    f, z = _cases(device)[name]
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(6),
                    dtype=z.dtype).to(device)
    leaf = z.clone().requires_grad_()
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(f(fwAD.make_dual(leaf, v))).tangent
    torch.testing.assert_close(tangent, (_backward(f, z) * v).sum(), rtol=1e-9, atol=1e-12)


def test_per_sample_gradients_of_a_model(device):
    """The torch.func recipe for per-sample gradients, `vmap(grad(loss of one sample))`,
    with a loss that decomposes over samples: equal to one backward per sample."""
    model = torch.nn.Linear(5, C).double().to(device)
    loss = softmetrics.SoftAccuracyLoss(task="multiclass", num_classes=C)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64).to(device)
    y = (torch.arange(6) % C).to(device)

    def one(p, xi, yi):
        return loss(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    per_sample = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    for i in range(6):
        model.zero_grad()
        loss(model(x[i:i + 1]), y[i:i + 1]).backward()
        for k, p in model.named_parameters():
            torch.testing.assert_close(per_sample[k][i], p.grad, rtol=1e-10, atol=1e-12)


def test_running_statistics_are_read_in_eval_mode_and_refused_in_training_mode():
    """A transform cannot update a Module's running statistics in place: training mode
    says so, eval mode reads them (the gradient of `.backward()`)."""
    y = torch.arange(N) % C
    z = torch.randn(N, C, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    loss = softmetrics.SoftF1Loss(task="multiclass", num_classes=C, momentum=0.9)
    loss(z, y)  # running statistics from one batch
    with pytest.raises(ValueError, match=r"`momentum` to be None in training mode inside a "
                                         r"torch\.func transform"):
        grad(lambda t: loss(t, y))(z)
    loss.eval()
    torch.testing.assert_close(grad(lambda t: loss(t, y))(z), _backward(lambda t: loss(t, y), z))
    torch.testing.assert_close(vmap(lambda t: loss(t, y))(torch.stack([z, -z])),
                               torch.stack([loss(z, y), loss(-z, y)]))


def test_data_checks_run_under_grad_and_are_left_out_under_vmap():
    """`validate_args=True` (the default) under `grad` still reads the target; under
    `vmap` the values are a batch that no Python `if` can decide, so the checks that read
    data are left out, as in torch.compile (they raised torch's data-dependent control
    flow error before)."""
    z = torch.randn(N, C, dtype=torch.float64)
    bad = torch.arange(N) % C
    bad[0] = C  # out of range
    with pytest.raises(ValueError, match="target"):
        grad(lambda t: soft_f1_score(t, bad, task="multiclass", num_classes=C))(z)
    y = torch.arange(N) % C
    torch.testing.assert_close(
        vmap(lambda t: soft_f1_score(t, y, task="multiclass", num_classes=C))(z[None]),
        soft_f1_score(z, y, task="multiclass", num_classes=C)[None])


def _graph_names(out: torch.Tensor) -> set[str]:
    seen, stack, names = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return names


def test_outside_transforms_the_fused_functions_still_run():
    """The transforms' plain operations are only for inside them: a training step keeps
    the fused Functions (their speed and memory)."""
    z = torch.randn(N, C, requires_grad=True)
    y = torch.arange(N) % C
    out = softmetrics.SoftF1Loss(task="multiclass", num_classes=C)(z, y)
    assert "_SoftmaxCountsBackward" in _graph_names(out)
    emb = torch.randn(8, 5, requires_grad=True)
    out = softmetrics.InfoNCELoss(chunk_size=2)(emb[:4], emb[4:])
    assert "_TiledInfoNCEBackward" in _graph_names(out)
    out = softmetrics.SoftAUROCLoss(task="binary")(z[:, 0], (y == 0).long())
    assert "NegativesAboveBackward" in _graph_names(out)


def test_the_concepts_pages_examples_run(capsys):
    """The code blocks of the Concepts page's section on transforms, in order, in one
    namespace, as a user runs them: per-sample gradients, and bootstrap replicates of an
    exact AUROC."""
    page = (Path(__file__).parents[1] / "docs" / "concepts.md").read_text()
    section = page[page.index("## `torch.func` transforms"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/concepts.md", "exec"), namespace)
    shape, interval = capsys.readouterr().out.strip().splitlines()
    assert shape == "torch.Size([64, 5, 20])"
    assert interval.startswith("tensor([0.") and interval.count("0.") == 2
    model, loss_fn = namespace["model"], namespace["loss_fn"]
    x, y, per_sample = namespace["x"], namespace["y"], namespace["per_sample"]
    model.zero_grad()
    loss_fn(model(x[3:4]), y[3:4]).backward()
    torch.testing.assert_close(per_sample["weight"][3], model.weight.grad)
    scores, labels = namespace["scores"], namespace["labels"]
    resamples, replicates = namespace["resamples"], namespace["replicates"]
    for i in (0, 999):
        expected = roc_auc_score(labels[resamples[i]].numpy(), scores[resamples[i]].numpy())
        assert abs(replicates[i].item() - expected) < 1e-6


def test_a_learned_temperature_through_functional_call():
    """`grad` in a Module's parameters (`functional_call`): the embeddings and the learned
    temperature of InfoNCE, against `.backward()`."""
    loss = softmetrics.InfoNCELoss(learn_temperature=True, temperature=0.2).double()
    emb = torch.randn(8, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    params = {k: v.detach() for k, v in loss.named_parameters()}

    def f(p, e):
        return functional_call(loss, p, (e[:4], e[4:]))

    g_params, g_emb = grad(f, argnums=(0, 1))(params, emb)
    leaf = emb.clone().requires_grad_()
    loss(leaf[:4], leaf[4:]).backward()
    torch.testing.assert_close(g_emb, leaf.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_params["log_temperature"], loss.log_temperature.grad,
                               rtol=1e-10, atol=1e-12)


COMPILED = ["SoftF1Loss-multiclass", "SoftF1Loss-micro", "SoftAccuracyLoss-multilabel",
            "SoftMCCLoss-multiclass", "SoftCohenKappaLoss", "SoftAUROCLoss", "SoftNDCGLoss",
            "InfoNCELoss-tiled", "SoftBLEULoss"]

_COMPILE_CHILD = """
import sys, torch
from torch.func import grad, vmap
from tests.test_func_transforms import _cases
cases = _cases(torch.device("cpu"))
for name in sys.argv[1:]:
    f, z = cases[name]
    batch = torch.stack([z, -z, z * 0.5])
    torch._dynamo.reset()  # each case compiles vmap's wrapper afresh (its recompile limit)
    compiled = torch.compile(vmap(grad(f)), fullgraph=True)
    for _ in range(3):
        torch.testing.assert_close(compiled(batch), vmap(grad(f))(batch), rtol=1e-7, atol=1e-9)
    print("ok", name, flush=True)
"""


@pytest.mark.compile
@pytest.mark.slow
def test_compiled_vmap_of_grad_equals_eager_mode_in_a_process_of_its_own():
    """`torch.compile(vmap(grad(loss)))`: compiled per-sample or per-batch gradients. In a
    process of its own, because the failure this guards against was a corrupted heap
    (torch 2.13's compiled CPU kernel of a vmapped `index_add`, now a scatter inside
    transforms), which aborts the process rather than failing an assertion."""
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    run = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, *COMPILED], cwd=root,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == [w for name in COMPILED for w in ("ok", name)]
