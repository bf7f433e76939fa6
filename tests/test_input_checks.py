"""Arguments that torch would misread or refuse deep inside, refused by the library with a
message that names the caller and the argument: an `ignore_index` that the target's dtype
cannot hold, tensors on different devices, a 0-d target for binary scores."""

from __future__ import annotations

import inspect
import re

import pytest
import torch

import softmetrics
from softmetrics import functional as F

Z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])


def _classification(y, ignore_index):
    return F.soft_f1_score(Z, y, task="multiclass", num_classes=2, average="none",
                           temperature=0, ignore_index=ignore_index)


def _ranking(y, ignore_index):
    return F.soft_auroc(Z[:, 1], y, task="binary", temperature=0, ignore_index=ignore_index)


def _retrieval(y, ignore_index):
    return F.soft_ndcg(Z.T, y.reshape(1, -1).expand(2, -1), temperature=0,
                       ignore_index=ignore_index)


FAMILIES = {"classification": _classification, "ranking": _ranking, "retrieval": _retrieval}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(("dtype", "ignore_index", "held"), [
    (torch.uint8, -1, "[0, 255]"), (torch.int8, 255, "[-128, 127]"),
    (torch.int32, 2**32 + 1, "[-2147483648, 2147483647]"),
    (torch.int64, -2**63 - 1, "[-9223372036854775808, 9223372036854775807]"),
    (torch.float16, 2049, "exactly"), (torch.bfloat16, 257, "exactly")])
def test_an_ignore_index_the_target_cannot_hold_is_refused(family, dtype, ignore_index,
                                                            held):
    """torch compares a tensor with a Python number in the tensor's dtype: -1 read as 255
    in uint8, 2^32 + 1 as 1 in int32 (every label 1 silently ignored), 2049 as 2048 in
    float16, and an int beyond int64 raised OverflowError. As `pad_id` for BLEU, an
    `ignore_index` must be a value the target's dtype holds."""
    y = torch.tensor([0, 1, 1, 1]).to(dtype)
    with pytest.raises(ValueError, match=rf"expected `ignore_index` to be a value `target`'s "
                                         rf"dtype {dtype} holds.*{re.escape(held)}"):
        FAMILIES[family](y, ignore_index)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_ignore_index_the_target_holds_still_ignores(family):
    y = torch.tensor([0, 1, 255, 1], dtype=torch.uint8)
    plain = FAMILIES[family](torch.tensor([0, 1, 1, 1]), None)
    masked = FAMILIES[family](y, 255)
    assert masked.shape == plain.shape
    if family != "classification":  # (multiclass labels are integers)
        # bool targets compare as integers: 255 never equals one, and nothing is ignored
        as_bool = FAMILIES[family](torch.tensor([False, True, True, True]), 255)
        torch.testing.assert_close(as_bool, plain)


META = torch.device("meta")


@pytest.mark.parametrize(("name", "call"), [
    ("target", lambda: F.soft_f1_score(torch.randn(4, 3, device=META),
                                        torch.tensor([0, 1, 2, 0]), task="multiclass",
                                        num_classes=3, validate_args=False)),
    ("target", lambda: F.soft_auroc(torch.randn(6, device=META),
                                     torch.tensor([0, 1, 0, 1, 1, 0]), task="binary",
                                     validate_args=False)),
    ("target", lambda: F.soft_ndcg(torch.randn(2, 4, device=META),
                                    torch.tensor([[0, 2, 1, 0], [1, 0, 0, 0]]),
                                    validate_args=False)),
    ("key", lambda: F.info_nce(torch.randn(5, 4, device=META), torch.randn(5, 4),
                               validate_args=False)),
    ("key", lambda: F.sigmoid_contrastive_loss(torch.randn(5, 4, device=META),
                                               torch.randn(5, 4), validate_args=False)),
    ("negatives", lambda: F.info_nce(torch.randn(5, 4), torch.randn(5, 4),
                                     negatives=torch.randn(3, 4, device=META),
                                     validate_args=False)),
    ("ref", lambda: F.bleu_score(torch.ones(2, 3, dtype=torch.long, device=META),
                                 torch.ones(2, 3, dtype=torch.long), validate_args=False)),
    ("ref", lambda: F.soft_bleu_score(torch.randn(2, 3, 5, device=META),
                                      torch.ones(2, 3, dtype=torch.long),
                                      validate_args=False)),
    ("log_probs", lambda: F.expected_bleu(torch.ones(2, 2, 3, dtype=torch.long, device=META),
                                          torch.zeros(2, 2), torch.ones(2, 3, dtype=torch.long),
                                          validate_args=False)),
    ("weight", lambda: F.nce_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]),
                                  torch.randn(5, 4, device=META), None, num_noise=2,
                                  validate_args=False)),
])
def test_tensors_on_different_devices_are_refused_by_name(name, call):
    """A second device (here `meta`, as a GPU would be) for one argument: refused before
    any computation, naming the argument and both devices, where torch's own error came
    from deep inside (`index_add(): self, index and source expected to be in the same
    device`)."""
    with pytest.raises(ValueError, match=rf"expected `{name}` to be on (meta|cpu), the "
                                         r"device of `\w+`, got a tensor on (cpu|meta)"):
        call()


@pytest.mark.parametrize("call", [
    lambda: F.soft_f1_score(torch.randn(5), torch.tensor(1), task="binary"),
    lambda: softmetrics.SoftAUROCLoss(task="binary")(torch.randn(5), torch.tensor(1)),
    lambda: F.soft_cohen_kappa(torch.randn(5), torch.tensor(1), task="binary"),
])
def test_a_0d_target_for_binary_scores_is_refused_by_shape(call):
    with pytest.raises(ValueError, match=r"expected `target` to be of shape \(5,\)"):
        call()


LOSSES = sorted(n for n in softmetrics.__all__ if n.endswith("Loss")
                and isinstance(getattr(softmetrics, n), type)
                and issubclass(getattr(softmetrics, n), torch.nn.Module))


REQUIRED = {"task": "binary", "k": 2, "num_classes": 3}  # values of required arguments


def _required(cls: type) -> dict[str, object]:
    """Values for the required keyword-only arguments of a loss class."""
    return {p.name: REQUIRED[p.name] for p in inspect.signature(cls).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("name", LOSSES)
def test_a_wrong_argument_names_the_loss_class_that_was_called(name):
    """An unknown option is refused with a message that names the class the user called,
    whether the library or Python's own argument binding refuses it: a class that
    inherits its `__init__` from a private base still names itself (`SoftF1Loss()` said
    `_TverskyLoss.__init__() missing ...`)."""
    cls = getattr(softmetrics, name)
    required = _required(cls)
    with pytest.raises(TypeError, match=rf"^{name}(\.__init__\(\) got an unexpected keyword "
                                        r"argument|: expected `no_such_option`)"):
        cls(**required, no_such_option=1)


# every loss but NCELoss, which takes its sizes positionally, as nn.Linear does
KEYWORD_LOSSES = [n for n in LOSSES if n != "NCELoss"]


@pytest.mark.parametrize("name", KEYWORD_LOSSES)
@pytest.mark.parametrize("given", ["binary", {"top_k": 2}])
def test_a_loss_takes_no_positional_argument(name, given):
    """Every option is a keyword: a positional argument is refused, naming the loss, and
    never taken for a private one (`SoftAccuracyLoss({"top_k": 2}, ...)` built top-2
    accuracy from its base's formula dictionary)."""
    cls = getattr(softmetrics, name)
    required = _required(cls)
    with pytest.raises(TypeError, match=rf"^{name}\.__init__\(\) takes 1 positional "
                                        r"argument but 2 (positional arguments .*)?were "
                                        r"given$"):
        cls(given, **required)


@pytest.mark.parametrize(("make", "missing"), [
    (lambda: softmetrics.SoftF1Loss(), "SoftF1Loss.__init__() missing 1 required "
                                       "keyword-only argument: 'task'"),
    (lambda: softmetrics.SoftDiceLoss(), "SoftDiceLoss.__init__() missing 1 required "
                                         "keyword-only argument: 'task'"),
    (lambda: softmetrics.SoftRecallAtKLoss(), "SoftRecallAtKLoss.__init__() missing 1 "
                                              "required keyword-only argument: 'k'")])
def test_a_missing_argument_names_the_loss_class_that_was_called(make, missing):
    with pytest.raises(TypeError, match=f"^{re.escape(missing)}$"):
        make()
