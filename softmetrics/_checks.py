"""Argument and tensor validation with one message template.

Every error raised by softmetrics reads

    <function>: expected `<argument>` to be <what was expected>, got <what was given>.

`ValueError` is used for values and shapes, `TypeError` for types and dtypes. Checks here
look only at metadata (shapes, dtypes, option strings) unless their name says otherwise:
the value checks (`DataChecks`, and `check_task_data` through it) read tensor data, need
a host synchronisation and are therefore run only when `checks_data(validate_args)` is
true: the caller's `validate_args`, except while `torch.compile` traces the code or
`torch.func.vmap` batches it.
`DataChecks` settles all the value checks of a call with one synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, cast, overload

import torch
from torch import Tensor

from ._options import AVERAGES, TASKS
from ._transforms import host_values, is_batching, is_compiling

__all__ = [
    "DataChecks",
    "binary_channel_squeezed",
    "check_floating",
    "check_held",
    "check_index_tensor",
    "check_int",
    "check_ndim",
    "check_no_extra_options",
    "check_num_classes",
    "check_number",
    "check_option",
    "check_same_device",
    "check_same_shape",
    "check_task_data",
    "check_task_inputs",
    "check_task_options",
    "check_temperature",
    "checks_data",
    "fail",
    "is_soft_target",
    "refuse_class_probabilities",
]


def _show(value: Any) -> str:
    if isinstance(value, Tensor):
        if value.ndim == 0:
            return f"tensor({value.item()!r})"
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value)
    return repr(value)


def fail(fn: str, arg: str, expected: str, got: Any, *, error: type[Exception] = ValueError,
         raw: bool = False) -> NoReturn:
    """Raise `error` with the library's one message template.

    `got` is formatted with `repr` (tensors by shape and dtype) unless `raw` is true, in
    which case it is inserted as given.
    """
    shown = got if raw else _show(got)
    raise error(f"{fn}: expected `{arg}` to be {expected}, got {shown}.")


def check_option(fn: str, arg: str, value: Any, allowed: Iterable[Any]) -> None:
    """`value` must be one of `allowed` (strings are compared exactly)."""
    allowed = tuple(allowed)
    if value not in allowed:
        fail(fn, arg, "one of " + ", ".join(repr(a) for a in allowed), value)


def check_number(fn: str, arg: str, value: object, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> float:
    """`value` must be a real Python number (not bool) within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(fn, arg, "a real number", value, error=TypeError)
    value = float(value)
    if math.isnan(value):
        fail(fn, arg, "a number, not NaN", value)
    bounds = []
    if low is not None:
        bounds.append(("> " if low_open else ">= ") + f"{low:g}")
    if high is not None:
        bounds.append(("< " if high_open else "<= ") + f"{high:g}")
    ok = True
    if low is not None:
        ok &= value > low if low_open else value >= low
    if high is not None:
        ok &= value < high if high_open else value <= high
    if not ok:
        fail(fn, arg, " and ".join(bounds), value)
    return value


def check_int(fn: str, arg: str, value: Any, *, low: int | None = None) -> int:
    """`value` must be a Python int (not bool), at least `low` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(fn, arg, "an int", value, error=TypeError)
    if low is not None and value < low:
        fail(fn, arg, f"an int >= {low}", value)
    return value


@overload
def check_temperature(fn: str, value: Tensor, *, allow_zero: bool = True,
                      arg: str = "temperature") -> Tensor: ...
@overload
def check_temperature(fn: str, value: float, *, allow_zero: bool = True,
                      arg: str = "temperature") -> float: ...
@overload
def check_temperature(fn: str, value: object, *, allow_zero: bool = True,
                      arg: str = "temperature") -> float | Tensor: ...
def check_temperature(fn: str, value: object, *, allow_zero: bool = True,
                      arg: str = "temperature") -> float | Tensor:
    """A temperature is a finite number >= 0 (> 0 when `allow_zero` is false) or a float
    tensor: at an infinite temperature every relaxed decision is a coin flip and nothing
    has a gradient.

    Tensors (for example a learnable temperature) are checked for shape and dtype here;
    their value (finite, > 0) with the data checks of `validate_args`.
    """
    if isinstance(value, Tensor):
        if value.numel() != 1:
            fail(fn, arg, "a number or a one-element tensor", value)
        if not value.is_floating_point():
            fail(fn, arg, "a floating-point tensor", value, error=TypeError)
        return value
    number = check_number(fn, arg, value, low=0.0, low_open=not allow_zero)
    if math.isinf(number):
        fail(fn, arg, "finite", value)
    return number


def check_floating(fn: str, arg: str, tensor: Any,
                   what: str = "raw scores or logits") -> Tensor:
    """`tensor` must be a floating-point `torch.Tensor`; `what` says in the message what
    the argument holds."""
    if not isinstance(tensor, Tensor):
        fail(fn, arg, "a torch.Tensor", type(tensor).__name__, error=TypeError, raw=True)
    if not tensor.is_floating_point():
        fail(fn, arg, f"a floating-point tensor ({what})", tensor.dtype,
             error=TypeError, raw=True)
    return tensor


def check_index_tensor(fn: str, arg: str, tensor: Any, *, allow_bool: bool = False,
                       allow_float: bool = False) -> Tensor:
    """`tensor` must hold integer labels (bool, and float 0/1, where allowed)."""
    if not isinstance(tensor, Tensor):
        fail(fn, arg, "a torch.Tensor", type(tensor).__name__, error=TypeError, raw=True)
    ok = not tensor.is_floating_point() and not torch.is_complex(tensor)
    if tensor.dtype == torch.bool and not allow_bool:
        ok = False
    if tensor.is_floating_point() and allow_float:
        ok = True
    if not ok:
        kinds = "an integer"
        if allow_bool or allow_float:
            kinds += (", bool" if allow_bool else "") + (" or float" if allow_float else "")
        fail(fn, arg, f"{kinds} tensor", tensor.dtype, error=TypeError, raw=True)
    return tensor


def check_ndim(fn: str, arg: str, tensor: Tensor, ndims: Iterable[int] | int,
               what: str | None = None) -> None:
    """`tensor.ndim` must be one of `ndims`."""
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if tensor.ndim not in ndims:
        expected = what or (" or ".join(f"{d}-D" for d in ndims) + " tensor")
        fail(fn, arg, expected, f"shape {tuple(tensor.shape)}", raw=True)


def check_same_shape(fn: str, arg: str, tensor: Tensor, shape: tuple[int, ...],
                     what: str) -> None:
    """`tensor.shape` must equal `shape`; `what` names the shape in words."""
    if tuple(tensor.shape) != tuple(shape):
        fail(fn, arg, f"of shape {tuple(shape)} ({what})", f"shape {tuple(tensor.shape)}",
             raw=True)


def _values_in_exact(fn: str, arg: str, tensor: Tensor, low: int, high: int,
                     ignore: int | None) -> None:
    """The exact value check, which names the first value out of place."""
    values = tensor if ignore is None else tensor[tensor != ignore]
    if values.numel() == 0:
        return
    if not values.is_floating_point():  # compared as numbers: a narrow dtype wraps bounds
        values = values.long()
    bad = (values < low) | (values >= high)
    if tensor.is_floating_point():
        bad |= values != values.round()
    if bool(bad.any()):
        first = values[bad][0].item()
        span = f"in {{{low}, {high - 1}}}" if high - low == 2 else f"in [{low}, {high})"
        extra = f" or {ignore} (ignore_index)" if ignore is not None else ""
        fail(fn, arg, f"integer values {span}{extra}", f"a value {first!r}", raw=True)


def _probabilities_exact(fn: str, arg: str, t: Tensor, ignore: int | None) -> None:
    inside = (t >= 0) & (t <= 1)
    if ignore is not None:
        inside |= t == ignore
    if not bool(inside.all()):
        first = t[~inside][0].item()
        extra = f" or {ignore} (ignore_index)" if ignore is not None else ""
        fail(fn, arg, f"probabilities in [0, 1]{extra}", f"a value {first!r}", raw=True)


def _sums_exact(fn: str, arg: str, sums: Tensor, class_axis: int, tol: float) -> None:
    off = (sums - 1).abs() > tol
    if bool(off.any()):
        fail(fn, arg, f"class probabilities summing to 1 over axis {class_axis} "
             f"(within {tol:.3g})", f"a sum of {sums[off][0].item():.6g}", raw=True)


def _finite_exact(fn: str, arg: str, tensor: Tensor) -> None:
    if not bool(torch.isfinite(tensor).all()):
        fail(fn, arg, "finite", "a tensor with NaN or infinite entries", raw=True)


def _in_range(t: Tensor, low: float, high: float, *, closed: bool = False) -> Tensor:
    """Whether every entry lies in [low, high) ([low, high] if `closed`), as a 0-d boolean
    on `t`'s device: one `aminmax` pass, no temporary of `t`'s size; False for a NaN.

    An integer tensor compares with a number in its own dtype, so a bound it cannot hold
    would wrap (300 reads as 44 in uint8): for integers the bounds are first brought
    inside the dtype's range, where they decide the same."""
    lo, hi = torch.aminmax(t)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        return (lo >= low) & ((hi <= high) if closed else (hi < high))
    info = torch.iinfo(t.dtype)
    first, last = math.ceil(low), math.floor(high) if closed else math.ceil(high) - 1
    if first > info.max or last < info.min or first > last:  # no value of the dtype fits
        return lo > info.max  # False, on the device
    return (lo >= max(first, info.min)) & (hi <= min(last, info.max))


class DataChecks:
    """The value checks of one call, settled together with one host synchronisation.

    Each check first computes a quick test on the tensor's device, without a
    synchronisation: a 0-d boolean, true when the data pass, from one reduction over the
    tensor, one pass with no temporary of the tensor's size (a sum for finiteness,
    `torch.aminmax` for ranges; a NaN anywhere reaches either). `settle` reads all of
    them at once; only when one is false does it run the exact checks, in the order the
    checks were made, the first that fails raising its error. A quick test may fail where
    its exact check passes (a sum of finite numbers can overflow): the exact check
    decides.
    """

    def __init__(self) -> None:
        self._quick: list[Tensor] = []
        self._exact: list[Callable[[], None]] = []

    def add(self, quick: Tensor, exact: Callable[[], None]) -> None:
        """A check of the caller's own: `quick` a 0-d boolean tensor (true: the data pass),
        `exact` the check that raises the error."""
        self._quick.append(quick)
        self._exact.append(exact)

    def finite(self, fn: str, arg: str, tensor: Tensor) -> None:
        """`tensor` must hold no NaN or infinity."""
        if not tensor.is_floating_point() or tensor.numel() == 0:
            return
        t = tensor.detach()
        # the sum is finite when every entry is (a NaN or an infinity reaches it, and
        # inf - inf is NaN); half precision sums in float32, as a float16 sum of ordinary
        # logits would overflow. Finite entries whose sum overflows fail here and pass the
        # exact check. On the CPU a sum takes about 60% of the time of `aminmax`.
        half = t.dtype in (torch.float16, torch.bfloat16)
        total = t.sum(dtype=torch.float32 if half else None)
        self.add(total.isfinite(), lambda: _finite_exact(fn, arg, t))

    def positive(self, fn: str, arg: str, value: Tensor,
                 expected: str = "finite and > 0") -> None:
        """A tensor option (a learned temperature or scale) must be finite and > 0 (one
        that overflowed to inf is refused too); `expected` is the message's wording."""
        v = value.detach()
        ok = (v > 0) & (v < math.inf)  # NaN fails both

        def exact() -> None:
            if not bool(ok.all()):
                fail(fn, arg, expected, value)

        self.add(ok.all(), exact)

    def temperature(self, fn: str, arg: str, value: float | Tensor) -> None:
        """A tensor temperature of a relaxation must be finite and > 0: only the number 0
        selects the exact metric (a number was checked with the options)."""
        if isinstance(value, Tensor):
            self.positive(fn, arg, value,
                          "finite and > 0 when a tensor (only the number 0 is exact)")

    def values_in(self, fn: str, arg: str, tensor: Tensor, low: int, high: int, *,
                  ignore: int | None = None, masked: Tensor | None = None) -> None:
        """Integer values of `tensor` must lie in [low, high) (entries equal to `ignore`
        pass). `masked`: an integer `tensor`'s values with the ignored ones replaced by
        values in range, in a dtype that holds them exactly, where the caller has made it
        anyway; otherwise an `ignore` outside the range costs the quick test one masked
        copy of the tensor."""
        if tensor.numel() == 0 or (tensor.dtype == torch.bool and low <= 0 and high >= 2):
            return
        t = tensor.detach()
        if t.is_floating_point():
            quick = (t == t.round()) & (t >= low) & (t < high)
            if ignore is not None:
                quick |= t == ignore
            quick = quick.all()
        elif masked is not None:  # integers in [low, high - 1], maybe as floats
            quick = _in_range(masked.detach(), low, high - 1, closed=True)
        else:
            if ignore is not None and not low <= ignore < high:
                t = t.masked_fill(t == ignore, low)
            quick = _in_range(t, low, high)
        self.add(quick, lambda: _values_in_exact(fn, arg, tensor.detach(), low, high, ignore))

    def probabilities(self, fn: str, arg: str, tensor: Tensor, *, ignore: int | None = None,
                      class_axis: int | None = None) -> None:
        """Soft targets: values in [0, 1] (entries equal to `ignore` pass) and, with a
        `class_axis`, summing to 1 along it within `max(1e-3, C * eps)` of the tensor's
        dtype (C its length; the sums of half-precision probabilities round by more than
        1e-3)."""
        if tensor.numel() == 0:
            return
        t = tensor.detach()
        inside = t if ignore is None or 0 <= ignore <= 1 else t.masked_fill(t == ignore, 0)
        self.add(_in_range(inside, 0, 1, closed=True),
                 lambda: _probabilities_exact(fn, arg, t, ignore))
        if class_axis is not None:
            tol = max(1e-3, t.shape[class_axis] * torch.finfo(t.dtype).eps)
            sums = t.sum(class_axis, dtype=torch.float64)
            if sums.numel():
                self.add(_in_range(sums, 1 - tol, 1 + tol, closed=True),
                         lambda: _sums_exact(fn, arg, sums, class_axis, tol))

    def settle(self, read: Tensor | None = None) -> list[Any]:
        """Read every quick test (one host synchronisation); if one failed, run the exact
        checks in order. The checks are then spent.

        `read`: integer values the caller needs on the host as well (1-D, on the device of
        the checks), read in the same synchronisation and returned as a list; after the
        checks, so that values of data that fail a check are never returned."""
        quick, exact = self._quick, self._exact
        self._quick, self._exact = [], []
        devices = {q.device for q in quick} | ({read.device} if read is not None else set())
        values: list[Any] = []
        if len(devices) > 1:  # tensors on several devices: one read each
            passed = all(bool(q) for q in quick)
            values = [] if read is None else host_values(read)
        elif read is not None:
            flags = [q.reshape(1).to(read.dtype) for q in quick]
            both = host_values(torch.cat([*flags, read]))
            passed, values = all(both[:len(flags)]), both[len(flags):]
        elif quick:
            passed = bool(torch.stack(quick).all()) if len(quick) > 1 else bool(quick[0])
        else:
            passed = True
        if not passed:
            for check in exact:
                check()
        return values


def refuse_class_probabilities(fn: str, task: str, input: Tensor, target: Tensor,
                               what: str) -> None:
    """A function that takes labels only (`what` names it in the message) refuses
    multiclass class probabilities as the target with a `TypeError` that says so, rather
    than asking for an integer tensor as if the dtype were a mistake."""
    if task == "multiclass" and is_soft_target(task, input, target):
        fail(fn, "target", f"class indices of shape (N, ...) ({what} takes no class "
             "probabilities as the target)", target, error=TypeError)


def is_soft_target(task: str, input: Tensor, target: Tensor) -> bool:
    """Whether `target` holds probabilities (soft targets) rather than labels: a floating
    target of the input's shape (multiclass: class probabilities (N, C, ...)); for binary
    and multilabel tasks every floating target, whose 0/1 values are the labels' special
    case."""
    if not (isinstance(target, Tensor) and target.is_floating_point()):
        return False
    return task != "multiclass" or target.shape == input.shape


def checks_data(validate_args: bool) -> bool:
    """Whether the checks that read tensor data run: when `validate_args` is true and the
    code is neither traced by `torch.compile` (or `torch.export`) nor batched by
    `torch.func.vmap`.

    Such a check ends in a Python `if` on a value computed on the device, which a graph
    cannot hold: `fullgraph=True` would fail on it and a plain `torch.compile` would break
    the graph at every check; under `vmap` the value is a batch. Compiled and batched code
    keeps the shape, dtype and option checks, which are decided from metadata; the data
    is checked by running the same call eagerly.
    """
    return validate_args and not is_compiling() and not is_batching()


def check_no_extra_options(fn: str, options: dict[str, Any]) -> None:
    """`options` (the keywords a constructor did not name) must be empty: a misspelt or
    unknown option is refused when the object is made, not on its first use."""
    for key, value in options.items():
        fail(fn, key, f"a known option of {fn} (unexpected option {key!r})", value,
             error=TypeError)


def check_num_classes(fn: str, task: str, num_classes: Any) -> None:
    """`num_classes` is required unless `task == "binary"`: >= 2 for multiclass, >= 1 for
    multilabel."""
    if task != "binary":
        if num_classes is None:
            fail(fn, "num_classes", f"an int >= 2 when task={task!r}", None)
        check_int(fn, "num_classes", num_classes, low=2 if task == "multiclass" else 1)


def check_task_options(fn: str, *, task: Any, num_classes: Any, average: Any,
                       temperature: Any, ignore_index: Any) -> None:
    """The options every classification-style function takes (classification and ranking):
    `task`, `average`, `temperature`, `ignore_index` and `num_classes`."""
    check_option(fn, "task", task, TASKS)
    check_option(fn, "average", average, AVERAGES)
    check_temperature(fn, temperature)
    if ignore_index is not None:
        check_int(fn, "ignore_index", ignore_index)
    check_num_classes(fn, task, num_classes)


def binary_channel_squeezed(input: Tensor, target: Tensor) -> bool:
    """Whether binary scores carry a singleton channel axis 1 that the target lacks:
    (N, 1, ...) logits with an (N, ...) mask, the segmentation convention."""
    return (input.ndim >= 2 and input.ndim == target.ndim + 1 and input.shape[1] == 1
            and input.shape[:1] + input.shape[2:] == target.shape)


def check_held(fn: str, option: str, value: int, arg: str, tensor: Tensor) -> None:
    """`value`, an `option` compared with the entries of `tensor` (`ignore_index`,
    `pad_id`), must be a value of `tensor`'s dtype: torch compares a tensor with a Python
    number in the tensor's dtype, so another would wrap into its range (-1 reads as 255 in
    uint8, 2^32 + 1 as 1 in int32: entries ignored that are not) or round (2049 as 2048 in
    float16), and one beyond int64 raised OverflowError. A bool tensor compares as int64."""
    dtype = torch.int64 if tensor.dtype == torch.bool else tensor.dtype
    if dtype.is_floating_point:
        if float(torch.tensor(float(value), dtype=dtype)) != value:
            fail(fn, option, f"a value `{arg}`'s dtype {tensor.dtype} holds exactly", value)
        return
    info = torch.iinfo(dtype)
    if not info.min <= value <= info.max:
        fail(fn, option, f"a value `{arg}`'s dtype {tensor.dtype} holds, in "
             f"[{info.min}, {info.max}]", value)


def check_same_device(fn: str, first: tuple[str, Tensor],
                      *others: tuple[str, Tensor | None]) -> None:
    """Every tensor of `others` (name, tensor; None skipped) on the device of `first`:
    torch's own error for a mismatch comes from deep inside and names no argument."""
    arg, device = first[0], first[1].device
    for name, tensor in others:
        if tensor is not None and tensor.device != device:
            fail(fn, name, f"on {device}, the device of `{arg}`",
                 f"a tensor on {tensor.device}", raw=True)


def check_task_inputs(fn: str, input: Tensor, target: Tensor, *, task: str,
                      num_classes: int | None, ignore_index: int | None,
                      soft_targets: bool = False) -> None:
    """Shapes and dtypes of a classification-style pair: multiclass scores (N, C, ...)
    with labels (N, ...); binary scores (N, ...) (or (N, 1, ...) with an (N, ...) target)
    and multilabel scores (N, C, ...) with targets of the same shape. `check_task_data`
    checks their values.

    With `soft_targets`, a target that `is_soft_target` holds probabilities, with no
    `ignore_index` for multiclass (no entry of a probability vector marks it as ignored)."""
    check_floating(fn, "input", input)
    if isinstance(target, Tensor):  # else refused below, by type
        check_same_device(fn, ("input", input), ("target", target))
        if ignore_index is not None:
            check_held(fn, "ignore_index", ignore_index, "target", target)
    if task == "multiclass":
        soft = soft_targets and is_soft_target(task, input, target)
        if not soft:
            check_index_tensor(fn, "target", target)
        if input.ndim < 2:
            fail(fn, "input", "of shape (N, C, ...) with C = num_classes for "
                 "task='multiclass'", f"shape {tuple(input.shape)}", raw=True)
        if input.shape[1] != num_classes:
            fail(fn, "input", f"of shape (N, {num_classes}, ...) (num_classes="
                 f"{num_classes} along axis 1)", f"shape {tuple(input.shape)}", raw=True)
        if soft:
            if ignore_index is not None:
                fail(fn, "ignore_index", "None with class probabilities as the target (no "
                     "entry of a probability vector marks it as ignored)", ignore_index)
            return
        expected = (input.shape[0], *input.shape[2:])
        check_same_shape(fn, "target", target, expected,
                         "input's shape without the class axis 1")
        return
    check_index_tensor(fn, "target", target, allow_bool=True, allow_float=True)
    if task == "multilabel":
        if input.ndim < 2 or input.shape[1] != num_classes:
            fail(fn, "input", f"of shape (N, {num_classes}, ...) for task='multilabel'",
                 f"shape {tuple(input.shape)}", raw=True)
    elif input.ndim < 1:
        fail(fn, "input", "of shape (N, ...) for task='binary'", "a 0-d tensor", raw=True)
    elif binary_channel_squeezed(input, target):
        input = input.squeeze(1)
    check_same_shape(fn, "target", target, tuple(input.shape), "input's shape")


def check_task_data(fn: str, input: Tensor, target: Tensor, *, task: str,
                    num_classes: int | None, ignore_index: int | None,
                    soft_targets: bool = False, masked: Tensor | None = None,
                    temperature: float | Tensor = 0.0) -> None:
    """The value checks of a pair that passed `check_task_inputs`, settled with one host
    synchronisation: the target's values (multiclass labels in [0, C), binary and
    multilabel labels 0/1, entries equal to `ignore_index` passing; with `soft_targets`
    probabilities, multiclass ones summing to 1 over the classes), then that `input` is
    finite, then that a tensor `temperature` is > 0 (a number was checked with the
    options). `masked`: the labels with their ignored entries set to 0, where the caller
    has them. Call only under `checks_data(validate_args)`."""
    checks = DataChecks()
    if task == "multiclass":
        if soft_targets and is_soft_target(task, input, target):
            checks.probabilities(fn, "target", target, class_axis=1)
        else:
            checks.values_in(fn, "target", target, 0, int(cast(int, num_classes)),
                             ignore=ignore_index, masked=masked)
    elif soft_targets and target.is_floating_point():
        checks.probabilities(fn, "target", target, ignore=ignore_index)
    else:
        checks.values_in(fn, "target", target, 0, 2, ignore=ignore_index, masked=masked)
    checks.finite(fn, "input", input)
    checks.temperature(fn, "temperature", temperature)
    checks.settle()
