"""Inputs and Module state on different devices: a clear error or the input's device.

A second device is simulated on the CPU with `meta` tensors (shapes and dtypes, no data):
a kernel that mixes a CPU tensor of more than zero dimensions with a meta tensor fails as
a CPU/CUDA mix would, while a 0-d CPU tensor takes part as a number on either.
"""

from __future__ import annotations

import pytest
import torch

import softmetrics
from softmetrics.functional import _infonce_tiles, nce_loss, soft_bleu_score, soft_f1_score

META = torch.device("meta")


@pytest.mark.parametrize("make, shape, target_shape", [
    (lambda: softmetrics.SoftF1Loss(task="multiclass", num_classes=3, momentum=0.9,
                                    validate_args=False), (8, 3), (8,)),
    (lambda: softmetrics.SoftMCCLoss(task="binary", momentum=0.5, validate_args=False),
     (8,), (8,)),
    (lambda: softmetrics.SoftAUROCLoss(task="multilabel", num_classes=3, momentum=0.9,
                                       validate_args=False), (8, 3), (8, 3)),
    (lambda: softmetrics.SoftAveragePrecisionLoss(task="binary", momentum=0.9,
                                                  validate_args=False), (8,), (8,)),
    (lambda: softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=3,
                                            weights="quadratic", momentum=0.9,
                                            validate_args=False), (8, 3), (8,)),
], ids=["f1", "mcc", "auroc", "ap", "kappa"])
def test_running_statistics_on_another_device_are_a_clear_error(make, shape, target_shape):
    loss_fn = make()  # buffers on the CPU
    input = torch.zeros(shape, device=META)
    target = torch.zeros(target_shape, dtype=torch.long, device=META)
    name = type(loss_fn).__name__
    with pytest.raises(ValueError, match=rf"^{name}: expected `input` to be on cpu, the "
                       r"device of the running statistics .*got a tensor on meta\.$"):
        loss_fn(input, target)


def test_running_statistics_on_the_input_device_pass_the_check():
    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=3, momentum=0.9)
    x = torch.randn(8, 3)
    assert torch.isfinite(loss_fn(x, torch.arange(8) % 3))


def test_nce_generator_on_another_device_is_a_clear_error():
    input = torch.zeros(4, 3, device=META)
    target = torch.zeros(4, dtype=torch.long, device=META)
    weight = torch.zeros(5, 3, device=META)
    cpu = torch.Generator().manual_seed(0)
    message = (r"expected `generator` to be a torch.Generator on meta \(the device of "
               r"`input`\).*got a generator on cpu\.$")
    with pytest.raises(ValueError, match="^nce_loss: " + message):
        nce_loss(input, target, weight, None, num_noise=3, generator=cpu, validate_args=False)
    loss_fn = softmetrics.NCELoss(5, 3, validate_args=False)
    with pytest.raises(ValueError, match="^NCELoss: " + message):
        loss_fn(input, target, weight, None, generator=cpu)
    # a generator on the input's device, or none, passes the check
    nce_loss(input, target, weight, None, num_noise=3, validate_args=False)


def test_learned_temperature_gradient_is_accumulated_on_the_embeddings_device():
    """The tiled InfoNCE sums the temperature's gradient over tiles on the device of the
    embeddings (autograd moves a 0-d gradient to the temperature's device)."""
    q = torch.zeros(6, 4, device=META, requires_grad=True)
    k = torch.zeros(6, 4, device=META, requires_grad=True)
    tau = torch.tensor(0.5, requires_grad=True)  # on the CPU
    out = _infonce_tiles._TiledInfoNCE.apply(tau, True, 2, 2, torch.float32,
                                             ((0, (1,), -1, 0),), q, k)
    with torch.no_grad():  # an ordinary backward (grad mode on builds a graph instead)
        grads = out.grad_fn.apply(torch.ones(6, device=META))
    assert grads[0].device == META and grads[0].shape == ()
    assert grads[-1].device == META and grads[-1].shape == k.shape


@pytest.mark.parametrize("shape", [(), (1,)])
def test_cpu_tensor_temperature_works_with_inputs_elsewhere(shape):
    tau = torch.full(shape, 0.5)
    logits = torch.zeros(4, 3, device=META)
    value = soft_f1_score(logits, torch.zeros(4, dtype=torch.long, device=META),
                          task="multiclass", num_classes=3, temperature=tau,
                          validate_args=False)
    assert value.device == META and value.dtype == torch.float32
    bleu = soft_bleu_score(torch.zeros(2, 5, 7, device=META),
                           torch.ones(2, 5, dtype=torch.long, device=META), temperature=tau,
                           validate_args=False)
    assert bleu.device == META and bleu.shape == (2,)
    loss_fn = softmetrics.SoftBLEULoss(temperature=tau, max_order=2, validate_args=False)
    assert loss_fn(torch.zeros(2, 5, 7, device=META),
                   torch.ones(2, 5, dtype=torch.long, device=META)).device == META
