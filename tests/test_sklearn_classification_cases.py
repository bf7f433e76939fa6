"""scikit-learn's own literal test cases for the classification metrics, replayed.

Each case takes the inputs and the expected numbers of a test in scikit-learn's
sklearn/metrics/tests/test_classification.py (version 1.9.1 unless a case says otherwise)
and checks that softmetrics at temperature 0 gives those numbers, to the tolerance the
literal allows, and that a small temperature comes close to them. Hard predictions enter as
logits: one-hot times 10 for multiclass, +-10 for binary and multilabel (the threshold 0.5 is
the logit 0).

Where a scikit-learn option has no softmetrics namesake, the case spells out the
equivalent: `labels=range(C)` is `absent_classes="include"`; a subset of labels is
`class_weights` (0/1 for macro and micro, the support for weighted) or, for multilabel
inputs, the label columns; `average="samples"` is the mean of the per-sample micro values
(`multidim_average="samplewise"`); `pos_label=0` swaps the two classes; labels -1/1 are
0/1; a sample weight of 0 is `ignore_index`, an integer weight repeats the sample. Its
`zero_division="warn"` gives 0.0, softmetrics' default `zero_division`.
"""

from __future__ import annotations

import functools

import pytest
import torch
from sklearn.datasets import make_multilabel_classification

from softmetrics import functional as F

METRICS = {
    "precision": F.soft_precision,
    "recall": F.soft_recall,
    "f1": F.soft_f1_score,
    "fbeta": F.soft_fbeta_score,
    "jaccard": F.soft_jaccard_index,
    "accuracy": F.soft_accuracy,
    "mcc": F.soft_matthews_corrcoef,
    "exact_match": F.soft_exact_match,
}
SCALE = 10.0  # logit of a hard decision
SOFT_TEMPERATURE = 1e-3
# at a small temperature the soft counts are exact to rounding; the relaxed "is this class
# present?" of absent classes converges as O(temperature) (docs: Which classes count)
SOFT_TOL = 5 * SOFT_TEMPERATURE
EXACT = 1e-12  # exact literals and fractions, in float64


def rounded(decimals: int) -> float:
    """Tolerance of a literal rounded to `decimals` places."""
    return 0.5 * 10.0**-decimals


def cut(decimals: int) -> float:
    """Tolerance of a literal that scikit-learn cuts rather than rounds (0.55 for 5/9):
    numpy's `assert_almost_equal(..., decimal)` criterion, under which its test passes."""
    return 1.5 * 10.0**-decimals


def _digits(text: str) -> list[int]:
    return [int(c) for c in text]


def _swap(labels: list[int]) -> list[int]:
    """The other class as the positive one (scikit-learn's `pos_label=0`)."""
    return [1 - v for v in labels]


def _fbeta(p: float, r: float, beta: float = 2.0) -> float:
    return (1 + beta**2) * p * r / (beta**2 * p + r)


def _logits(pred: list, task: str, num_classes: int) -> torch.Tensor:
    p = torch.tensor(pred)
    if task == "multiclass":
        return torch.nn.functional.one_hot(p, num_classes).double() * SCALE
    return (2.0 * p.double() - 1.0) * SCALE


def _num_classes(task: str, target: list, pred: list) -> int | None:
    if task == "binary":
        return None
    if task == "multilabel":
        return len(target[0])
    return max(max(target), max(pred)) + 1


def _metric(name: str, task: str, target: list, pred: list, temperature: float,
            **options) -> torch.Tensor:
    """softmetrics' `name` of the hard predictions `pred`. `average="samples"` is
    scikit-learn's: the mean over samples of each sample's micro value; `at` picks one
    entry of a per-class or per-sample result."""
    options = dict(options)
    num_classes = options.pop("num_classes", None) or _num_classes(task, target, pred)
    at = options.pop("at", None)
    samples = options.get("average") == "samples"
    if samples:
        options.update(average="micro", multidim_average="samplewise")
    kw = dict(task=task, temperature=temperature, **options)
    if num_classes is not None:
        kw["num_classes"] = num_classes
    value = METRICS[name](_logits(pred, task, num_classes), torch.tensor(target), **kw)
    if samples:
        value = value.mean()
    return value if at is None else value[at]


def case(id_: str, metric: str, task: str, target: list, pred: list, expected,
         tol: float = EXACT, **options):
    return pytest.param(metric, task, target, pred, options, expected, tol, id=id_)


# --- inputs shared by several tests --------------------------------------------------------

# make_prediction(binary=True) and make_prediction() of scikit-learn 1.9.1 (a calibrated
# linear SVC on iris with noise features, seeded: the same labels on every run); the
# literals of the tests that use them pin them down
IRIS_BINARY_TRUE = _digits("00111010101011001010011010100000011001111101001110")
IRIS_BINARY_PRED = _digits("00110011001101001010010010110000001000110101001100")
IRIS_TRUE = _digits("220211012121111022102122010210101100002012010110011112110020102201111020122")
IRIS_PRED = _digits("221222012222022022221222020211202100002021020000122202220021202202222020222")

Y1 = [[0, 1, 1], [1, 0, 1]]  # test_multilabel_accuracy_score_subset_accuracy and others
Y2 = [[0, 0, 1], [1, 0, 1]]
NOT_Y1 = [[1, 0, 0], [0, 1, 0]]
NOT_Y2 = [[1, 1, 0], [0, 1, 0]]
ZEROS = [[0, 0, 0], [0, 0, 0]]

ML1_TRUE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]]  # test_..._multilabel_1
ML1_PRED = [[0, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0]]
ML2_TRUE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0]]  # test_..._multilabel_2
ML2_PRED = [[0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 0, 0]]
EMPTY_TRUE = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]]  # test_..._with_an_empty_prediction
EMPTY_PRED = [[0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0]]
JAC_TRUE = [[0, 1, 1], [1, 0, 0]]  # test_multilabel_jaccard_score
JAC_PRED = [[1, 1, 1], [1, 0, 1]]
NO_LABELS = [[0, 0, 0]] * 20  # test_precision_recall_f1_no_labels


def _empty_prediction_cases(zd: float, tag: str) -> list:
    """scikit-learn, test_precision_recall_f1_score_with_an_empty_prediction, for one
    `zero_division` ("warn" gives 0). Label 0 is never predicted (precision
    `zero_division`), label 3 never true (recall `zero_division`)."""
    t, p, f2 = EMPTY_TRUE, EMPTY_PRED, [0, 0.55, 1, 0]
    kw = dict(zero_division=zd)
    return [
        case(f"empty-pred-{tag}-precision-none", "precision", "multilabel", t, p,
             [zd, 1.0, 1.0, 0.0], average="none", **kw),
        case(f"empty-pred-{tag}-recall-none", "recall", "multilabel", t, p,
             [0.0, 0.5, 1.0, zd], average="none", **kw),
        case(f"empty-pred-{tag}-f1-none", "f1", "multilabel", t, p, [0, 1 / 1.5, 1, 0],
             average="none", **kw),
        case(f"empty-pred-{tag}-f2-none", "fbeta", "multilabel", t, p, f2, cut(2),
             beta=2.0, average="none", **kw),
        case(f"empty-pred-{tag}-precision-macro", "precision", "multilabel", t, p,
             (2 + zd) / 4, average="macro", **kw),
        case(f"empty-pred-{tag}-recall-macro", "recall", "multilabel", t, p,
             (1.5 + zd) / 4, average="macro", **kw),
        case(f"empty-pred-{tag}-f1-macro", "f1", "multilabel", t, p, (2 / 3 + 1) / 4,
             average="macro", **kw),
        case(f"empty-pred-{tag}-f2-macro", "fbeta", "multilabel", t, p, sum(f2) / 4, cut(2),
             beta=2.0, average="macro", **kw),
        case(f"empty-pred-{tag}-precision-micro", "precision", "multilabel", t, p, 2 / 3,
             average="micro", **kw),
        case(f"empty-pred-{tag}-recall-micro", "recall", "multilabel", t, p, 0.5,
             average="micro", **kw),
        case(f"empty-pred-{tag}-f1-micro", "f1", "multilabel", t, p, 2 / 3 / (2 / 3 + 0.5),
             average="micro", **kw),
        case(f"empty-pred-{tag}-f2-micro", "fbeta", "multilabel", t, p, _fbeta(2 / 3, 0.5),
             beta=2.0, average="micro", **kw),
        case(f"empty-pred-{tag}-precision-weighted", "precision", "multilabel", t, p,
             3 / 4 if zd == 0 else 1.0, average="weighted", **kw),
        case(f"empty-pred-{tag}-recall-weighted", "recall", "multilabel", t, p, 0.5,
             average="weighted", **kw),
        case(f"empty-pred-{tag}-f1-weighted", "f1", "multilabel", t, p,
             (2 * 2 / 3 + 1) / 4, average="weighted", **kw),
        # np.average(f2, weights=support), support [1, 2, 1, 0]
        case(f"empty-pred-{tag}-f2-weighted", "fbeta", "multilabel", t, p,
             (f2[0] + 2 * f2[1] + f2[2]) / 4, cut(2), beta=2.0, average="weighted", **kw),
        # precision/recall/F1 "samples" are computed there with the default zero_division
        case(f"empty-pred-{tag}-precision-samples", "precision", "multilabel", t, p, 1 / 3,
             average="samples"),
        case(f"empty-pred-{tag}-recall-samples", "recall", "multilabel", t, p, 1 / 3,
             average="samples"),
        case(f"empty-pred-{tag}-f1-samples", "f1", "multilabel", t, p, 1 / 3,
             average="samples"),
        case(f"empty-pred-{tag}-f2-samples", "fbeta", "multilabel", t, p, 0.333, cut(2),
             beta=2.0, average="samples", **kw),
    ]


def _no_labels_cases(zd: float, tag: str) -> list:
    """scikit-learn, test_precision_recall_f1_no_labels and
    test_precision_recall_f1_no_labels_average_none (and, for "warn" = 0,
    test_precision_recall_f1_no_labels_check_warnings and
    test_precision_recall_f1_no_labels_average_none_warn): nothing true, nothing
    predicted, every value is `zero_division`."""
    out = []
    for metric, extra in (("precision", {}), ("recall", {}), ("f1", {}),
                          ("fbeta", {"beta": 1.0})):
        for average in ("macro", "micro", "weighted", "samples", "none"):
            want = [zd] * 3 if average == "none" else zd
            out.append(case(f"no-labels-{tag}-{metric}-{average}", metric, "multilabel",
                            NO_LABELS, NO_LABELS, want, average=average, zero_division=zd,
                            **extra))
    return out


CASES = [
    # scikit-learn, sklearn/metrics/tests/test_classification.py,
    # test_multilabel_accuracy_score_subset_accuracy (accuracy_score of indicator arrays
    # is subset accuracy, softmetrics' exact match)
    case("subset-acc-y1-y2", "exact_match", "multilabel", Y1, Y2, 0.5),
    case("subset-acc-y1-y1", "exact_match", "multilabel", Y1, Y1, 1.0),
    case("subset-acc-y2-y2", "exact_match", "multilabel", Y2, Y2, 1.0),
    case("subset-acc-y2-not", "exact_match", "multilabel", Y2, NOT_Y2, 0.0),
    case("subset-acc-y1-not", "exact_match", "multilabel", Y1, NOT_Y1, 0.0),
    case("subset-acc-y1-zeros", "exact_match", "multilabel", Y1, ZEROS, 0.0),
    case("subset-acc-y2-zeros", "exact_match", "multilabel", Y2, ZEROS, 0.0),
    # scikit-learn, test_multilabel_hamming_loss: multilabel micro accuracy is
    # 1 - hamming_loss; the sample weights [1, 3] repeat the second sample three times
    case("hamming-y1-y2", "accuracy", "multilabel", Y1, Y2, 1 - 1 / 6),
    case("hamming-y1-y1", "accuracy", "multilabel", Y1, Y1, 1 - 0.0),
    case("hamming-y2-y2", "accuracy", "multilabel", Y2, Y2, 1 - 0.0),
    case("hamming-y2-not", "accuracy", "multilabel", Y2, NOT_Y2, 1 - 1.0),
    case("hamming-y1-not", "accuracy", "multilabel", Y1, NOT_Y1, 1 - 1.0),
    case("hamming-y1-zeros", "accuracy", "multilabel", Y1, ZEROS, 1 - 4 / 6),
    case("hamming-y2-zeros", "accuracy", "multilabel", Y2, ZEROS, 1 - 0.5),
    case("hamming-weighted-y1-y2", "accuracy", "multilabel", Y1 + Y1[1:] * 2,
         Y2 + Y2[1:] * 2, 1 - 1 / 12),
    case("hamming-weighted-y1-not-y2", "accuracy", "multilabel", Y1 + Y1[1:] * 2,
         NOT_Y2 + NOT_Y2[1:] * 2, 1 - 11 / 12),
    case("hamming-weighted-y1-zeros", "accuracy", "multilabel", Y1 + Y1[1:] * 2,
         ZEROS + ZEROS[1:] * 2, 1 - 2 / 3),
    # scikit-learn, test_precision_recall_f1_score_binary (iris, binary): the per-class
    # values are those of the two classes (softmetrics: multiclass with C = 2), the
    # binary ones those of class 1
    case("iris-binary-precision-none", "precision", "multiclass", IRIS_BINARY_TRUE,
         IRIS_BINARY_PRED, [0.73, 0.85], rounded(2), average="none"),
    case("iris-binary-recall-none", "recall", "multiclass", IRIS_BINARY_TRUE,
         IRIS_BINARY_PRED, [0.88, 0.68], rounded(2), average="none"),
    case("iris-binary-f1-none", "f1", "multiclass", IRIS_BINARY_TRUE, IRIS_BINARY_PRED,
         [0.80, 0.76], rounded(2), average="none"),
    case("iris-binary-precision", "precision", "binary", IRIS_BINARY_TRUE, IRIS_BINARY_PRED,
         0.85, rounded(2)),
    case("iris-binary-recall", "recall", "binary", IRIS_BINARY_TRUE, IRIS_BINARY_PRED,
         0.68, rounded(2)),
    case("iris-binary-f1", "f1", "binary", IRIS_BINARY_TRUE, IRIS_BINARY_PRED, 0.76,
         rounded(2)),
    # (1 + 2^2) p r / (2^2 p + r) of the two literals above, asserted to 2 decimals
    case("iris-binary-f2", "fbeta", "binary", IRIS_BINARY_TRUE, IRIS_BINARY_PRED,
         _fbeta(0.85, 0.68), cut(2), beta=2.0),
    # scikit-learn, test_confusion_matrix_binary
    case("iris-binary-mcc", "mcc", "binary", IRIS_BINARY_TRUE, IRIS_BINARY_PRED, 0.57,
         rounded(2)),
    # scikit-learn, test_precision_recall_f1_score_multiclass (iris, 3 classes); the
    # recall of class 1 is 3/31 = 0.0968, written 0.09
    case("iris-precision-none", "precision", "multiclass", IRIS_TRUE, IRIS_PRED,
         [0.83, 0.33, 0.42], rounded(2), average="none"),
    case("iris-recall-none", "recall", "multiclass", IRIS_TRUE, IRIS_PRED,
         [0.79, 0.09, 0.90], cut(2), average="none"),
    case("iris-f1-none", "f1", "multiclass", IRIS_TRUE, IRIS_PRED, [0.81, 0.15, 0.57],
         rounded(2), average="none"),
    case("iris-precision-micro", "precision", "multiclass", IRIS_TRUE, IRIS_PRED, 0.53,
         rounded(2), average="micro"),
    case("iris-recall-micro", "recall", "multiclass", IRIS_TRUE, IRIS_PRED, 0.53,
         rounded(2), average="micro"),
    case("iris-f1-micro", "f1", "multiclass", IRIS_TRUE, IRIS_PRED, 0.53, rounded(2),
         average="micro"),
    case("iris-precision-macro", "precision", "multiclass", IRIS_TRUE, IRIS_PRED, 0.53,
         rounded(2), average="macro"),
    case("iris-recall-macro", "recall", "multiclass", IRIS_TRUE, IRIS_PRED, 0.60,
         rounded(2), average="macro"),
    case("iris-f1-macro", "f1", "multiclass", IRIS_TRUE, IRIS_PRED, 0.51, rounded(2),
         average="macro"),
    case("iris-precision-weighted", "precision", "multiclass", IRIS_TRUE, IRIS_PRED, 0.51,
         rounded(2), average="weighted"),
    case("iris-recall-weighted", "recall", "multiclass", IRIS_TRUE, IRIS_PRED, 0.53,
         rounded(2), average="weighted"),
    case("iris-f1-weighted", "f1", "multiclass", IRIS_TRUE, IRIS_PRED, 0.47, rounded(2),
         average="weighted"),
    # scikit-learn, test_classification_report_dictionary_output (the same predictions;
    # the literals are written to float precision, so they are held to EXACT)
    case("iris-report-precision-none", "precision", "multiclass", IRIS_TRUE, IRIS_PRED,
         [0.82608695652173914, 0.33333333333333331, 0.41860465116279072], EXACT,
         average="none"),
    case("iris-report-recall-none", "recall", "multiclass", IRIS_TRUE, IRIS_PRED,
         [0.79166666666666663, 0.096774193548387094, 0.90000000000000002], EXACT,
         average="none"),
    case("iris-report-f1-none", "f1", "multiclass", IRIS_TRUE, IRIS_PRED,
         [0.8085106382978724, 0.15000000000000002, 0.57142857142857151], EXACT,
         average="none"),
    case("iris-report-precision-macro", "precision", "multiclass", IRIS_TRUE, IRIS_PRED,
         0.5260083136726211, EXACT, average="macro"),
    case("iris-report-recall-macro", "recall", "multiclass", IRIS_TRUE, IRIS_PRED,
         0.596146953405018, EXACT, average="macro"),
    case("iris-report-f1-macro", "f1", "multiclass", IRIS_TRUE, IRIS_PRED,
         0.5099797365754813, EXACT, average="macro"),
    case("iris-report-precision-weighted", "precision", "multiclass", IRIS_TRUE,
         IRIS_PRED, 0.5137535108414785, EXACT, average="weighted"),
    case("iris-report-recall-weighted", "recall", "multiclass", IRIS_TRUE, IRIS_PRED,
         0.5333333333333333, EXACT, average="weighted"),
    case("iris-report-f1-weighted", "f1", "multiclass", IRIS_TRUE, IRIS_PRED,
         0.47310435663627154, EXACT, average="weighted"),
    case("iris-report-accuracy", "accuracy", "multiclass", IRIS_TRUE, IRIS_PRED,
         0.5333333333333333),
    # scikit-learn, test_classification_report_multiclass_balanced
    *[case(f"balanced-report-{m}-{a}", m, "multiclass", [0, 0, 0, 1, 1, 1, 2, 2, 2],
           [0, 1, 2] * 3, [0.33] * 3 if a == "none" else 0.33, rounded(2), average=a)
      for m in ("precision", "recall", "f1") for a in ("none", "macro", "weighted")],
    case("balanced-report-accuracy", "accuracy", "multiclass", [0, 0, 0, 1, 1, 1, 2, 2, 2],
         [0, 1, 2] * 3, 0.33, rounded(2)),
    # scikit-learn, test_precision_recall_f_binary_single_class (-1 is the negative
    # class, 0 here; F-beta with beta=inf is recall)
    case("single-class-pos-precision", "precision", "binary", [1, 1], [1, 1], 1.0),
    case("single-class-pos-recall", "recall", "binary", [1, 1], [1, 1], 1.0),
    case("single-class-pos-f1", "f1", "binary", [1, 1], [1, 1], 1.0),
    case("single-class-neg-precision", "precision", "binary", [0, 0], [0, 0], 0.0),
    case("single-class-neg-recall", "recall", "binary", [0, 0], [0, 0], 0.0),
    case("single-class-neg-f1", "f1", "binary", [0, 0], [0, 0], 0.0),
    case("single-class-neg-f-inf", "fbeta", "binary", [0, 0], [0, 0], 0.0,
         beta=float("inf")),
    # scikit-learn, test_precision_recall_f_extra_labels: labels=[0, 1, 2, 3, 4] with
    # classes 0 and 4 in neither input is absent_classes="include" (multiclass; every
    # label counts by default for multilabel inputs)
    case("extra-labels-recall-none", "recall", "multiclass", [1, 3, 3, 2], [1, 1, 3, 2],
         [0.0, 1.0, 1.0, 0.5, 0.0], num_classes=5, average="none"),
    case("extra-labels-recall-macro", "recall", "multiclass", [1, 3, 3, 2], [1, 1, 3, 2],
         (0.0 + 1.0 + 1.0 + 0.5 + 0.0) / 5, num_classes=5, average="macro",
         absent_classes="include"),
    case("extra-labels-bin-recall-none", "recall", "multilabel",
         [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]],
         [[0, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]],
         [0.0, 1.0, 1.0, 0.5, 0.0], average="none"),
    case("extra-labels-bin-recall-macro", "recall", "multilabel",
         [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]],
         [[0, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]],
         (0.0 + 1.0 + 1.0 + 0.5 + 0.0) / 5, average="macro"),
    # the same test, non-regression for scikit-learn issue #10307: "samples" with
    # labels=[0, 1] is "samples" on the first two label columns
    case("issue-10307-precision-samples", "precision", "multilabel", [[0, 1], [1, 0]],
         [[1, 1], [1, 0]], 3 / 4, average="samples"),
    case("issue-10307-recall-samples", "recall", "multilabel", [[0, 1], [1, 0]],
         [[1, 1], [1, 0]], 1.0, average="samples"),
    case("issue-10307-f1-samples", "f1", "multilabel", [[0, 1], [1, 0]], [[1, 1], [1, 0]],
         5 / 6, average="samples"),
    # scikit-learn, test_precision_recall_f_ignored_labels: labels=[1, 3] is a 0/1
    # class_weights (macro, micro) or the support of the kept classes (weighted, as a
    # weighted macro mean); per class, the entries 1 and 3
    *[case(f"ignored-labels-{task}-{name}", "recall", task, target, pred, want,
           num_classes=5, **kw)
      for task, target, pred in (
          ("multiclass", [1, 1, 2, 3], [1, 3, 3, 3]),
          ("multilabel",
           [[0, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]],
           [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0]]))
      for name, want, kw in (
          ("none-1", 0.5, dict(average="none", at=1)),
          ("none-3", 1.0, dict(average="none", at=3)),
          ("macro", (0.5 + 1.0) / 2,
           dict(average="macro", class_weights=torch.tensor([0.0, 1, 0, 1, 0]))),
          ("weighted", (0.5 * 2 + 1.0 * 1) / 3,
           dict(average="macro", class_weights=torch.tensor([0.0, 2, 0, 1, 0]))),
          ("micro", 2.0 / 3,
           dict(average="micro", class_weights=torch.tensor([0.0, 1, 0, 1, 0]))))],
    # scikit-learn, test_matthews_corrcoef (the literal inputs)
    case("mcc-all-zero", "mcc", "binary", [0, 0, 0, 0], [0, 0, 0, 0], 0.0),
    case("mcc-uncorrelated", "mcc", "binary",
         [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1],
         [1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1], 0.0),
    # scikit-learn, test_matthews_corrcoef_nan (in earlier versions of the file, e.g.
    # commit cc928d13888d2679ad6bb8cf55ff7b2d08e8bf07)
    case("mcc-nan-one-sample", "mcc", "binary", [0], [1], 0.0),
    case("mcc-nan-constant-target", "mcc", "binary", [0, 0], [0, 1], 0.0),
    # scikit-learn, test_matthews_corrcoef_multiclass; a sample weight of 0 is an
    # ignored target
    case("mcc-multiclass-bad", "mcc", "multiclass", [0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1],
         -0.5),
    case("mcc-multiclass-min", "mcc", "multiclass", [0, 0, 1, 1, 2, 2], [1, 1, 0, 0, 0, 0],
         -12 / (24 * 16) ** 0.5),
    case("mcc-multiclass-constant-pred", "mcc", "multiclass", [0, 1, 2], [3, 3, 3], 0.0),
    case("mcc-multiclass-constant-target", "mcc", "multiclass", [3, 3, 3], [0, 1, 2], 0.0),
    case("mcc-multiclass-uncorrelated", "mcc", "multiclass", [0, 1, 2, 0, 1, 2, 0, 1, 2],
         [1, 1, 1, 2, 2, 2, 0, 0, 0], 0.0),
    case("mcc-multiclass-masked", "mcc", "multiclass", [0, 0, 1, 1, -1], [1, 1, 0, 0, 2],
         -1.0, num_classes=3, ignore_index=-1),
    case("mcc-multiclass-masked-constant", "mcc", "multiclass", [0, 0, -1, -1],
         [0, 0, 1, 2], 0.0, num_classes=3, ignore_index=-1),
    # scikit-learn, test_matthews_corrcoef_overflow (the literal inputs, n_points=10000)
    case("mcc-overflow-binary", "mcc", "binary", [0] * 10000 + [1] * 10000,
         [0] * 10000 + [1] * 10000, 1.0),
    case("mcc-overflow-multiclass", "mcc", "multiclass",
         [0] * 10000 + [1] * 10000 + [2] * 10000, [0] * 10000 + [1] * 10000 + [2] * 10000,
         1.0),
    # scikit-learn, test_zero_precision_recall
    *[case(f"zero-precision-recall-{m}", m, "multiclass", [0, 1, 2, 0, 1, 2],
           [2, 0, 1, 1, 2, 0], 0.0, average="macro") for m in ("precision", "recall", "f1")],
    # scikit-learn, test_precision_refcall_f1_score_multilabel_unordered_labels: labels
    # [3, 0, 1, 2] are all the labels, in another order
    *[case(f"unordered-labels-{m}-{a}", m, "multilabel", [[1, 1, 0, 0]], [[0, 0, 1, 1]],
           [0.0] * 4 if a == "none" else 0.0, average=a)
      for m in ("precision", "recall", "f1")
      for a in ("samples", "micro", "macro", "weighted", "none")],
    # scikit-learn, test_precision_recall_f1_score_multilabel_1
    case("ml1-precision-none", "precision", "multilabel", ML1_TRUE, ML1_PRED,
         [0.0, 0.5, 1.0, 0.0], average="none"),
    case("ml1-recall-none", "recall", "multilabel", ML1_TRUE, ML1_PRED, [0.0, 1.0, 1.0, 0.0],
         average="none"),
    case("ml1-f1-none", "f1", "multilabel", ML1_TRUE, ML1_PRED, [0.0, 1 / 1.5, 1, 0.0],
         average="none"),
    case("ml1-f2-none", "fbeta", "multilabel", ML1_TRUE, ML1_PRED, [0, 0.83, 1, 0],
         rounded(2), beta=2.0, average="none"),
    case("ml1-precision-macro", "precision", "multilabel", ML1_TRUE, ML1_PRED, 1.5 / 4,
         average="macro"),
    case("ml1-recall-macro", "recall", "multilabel", ML1_TRUE, ML1_PRED, 0.5,
         average="macro"),
    case("ml1-f1-macro", "f1", "multilabel", ML1_TRUE, ML1_PRED, 2.5 / 1.5 * 0.25,
         average="macro"),
    case("ml1-f2-macro", "fbeta", "multilabel", ML1_TRUE, ML1_PRED, (0.83 + 1) / 4,
         rounded(2), beta=2.0, average="macro"),
    case("ml1-precision-micro", "precision", "multilabel", ML1_TRUE, ML1_PRED, 0.5,
         average="micro"),
    case("ml1-recall-micro", "recall", "multilabel", ML1_TRUE, ML1_PRED, 0.5,
         average="micro"),
    case("ml1-f1-micro", "f1", "multilabel", ML1_TRUE, ML1_PRED, 0.5, average="micro"),
    case("ml1-f2-micro", "fbeta", "multilabel", ML1_TRUE, ML1_PRED, _fbeta(0.5, 0.5),
         beta=2.0, average="micro"),
    case("ml1-precision-weighted", "precision", "multilabel", ML1_TRUE, ML1_PRED, 1.5 / 4,
         average="weighted"),
    case("ml1-recall-weighted", "recall", "multilabel", ML1_TRUE, ML1_PRED, 0.5,
         average="weighted"),
    case("ml1-f1-weighted", "f1", "multilabel", ML1_TRUE, ML1_PRED, 2.5 / 1.5 * 0.25,
         average="weighted"),
    case("ml1-f2-weighted", "fbeta", "multilabel", ML1_TRUE, ML1_PRED, (0.83 + 1) / 4,
         rounded(2), beta=2.0, average="weighted"),
    case("ml1-precision-samples", "precision", "multilabel", ML1_TRUE, ML1_PRED, 0.5,
         average="samples"),
    case("ml1-recall-samples", "recall", "multilabel", ML1_TRUE, ML1_PRED, 0.5,
         average="samples"),
    case("ml1-f1-samples", "f1", "multilabel", ML1_TRUE, ML1_PRED, 0.5, average="samples"),
    case("ml1-f2-samples", "fbeta", "multilabel", ML1_TRUE, ML1_PRED, 0.5, beta=2.0,
         average="samples"),
    # scikit-learn, test_precision_recall_f1_score_multilabel_2 (0.66 for 2/3 and 0.55 for
    # 5/9 are cut, not rounded)
    case("ml2-precision-none", "precision", "multilabel", ML2_TRUE, ML2_PRED,
         [0.0, 1.0, 0.0, 0.0], average="none"),
    case("ml2-recall-none", "recall", "multilabel", ML2_TRUE, ML2_PRED, [0.0, 0.5, 0.0, 0.0],
         average="none"),
    case("ml2-f1-none", "f1", "multilabel", ML2_TRUE, ML2_PRED, [0.0, 0.66, 0.0, 0.0],
         cut(2), average="none"),
    case("ml2-f2-none", "fbeta", "multilabel", ML2_TRUE, ML2_PRED, [0, 0.55, 0, 0], cut(2),
         beta=2.0, average="none"),
    case("ml2-precision-micro", "precision", "multilabel", ML2_TRUE, ML2_PRED, 0.25,
         average="micro"),
    case("ml2-recall-micro", "recall", "multilabel", ML2_TRUE, ML2_PRED, 0.25,
         average="micro"),
    case("ml2-f1-micro", "f1", "multilabel", ML2_TRUE, ML2_PRED, 2 * 0.25 * 0.25 / 0.5,
         average="micro"),
    case("ml2-f2-micro", "fbeta", "multilabel", ML2_TRUE, ML2_PRED, _fbeta(0.25, 0.25),
         beta=2.0, average="micro"),
    case("ml2-precision-macro", "precision", "multilabel", ML2_TRUE, ML2_PRED, 0.25,
         average="macro"),
    case("ml2-recall-macro", "recall", "multilabel", ML2_TRUE, ML2_PRED, 0.125,
         average="macro"),
    case("ml2-f1-macro", "f1", "multilabel", ML2_TRUE, ML2_PRED, 2 / 12, average="macro"),
    case("ml2-f2-macro", "fbeta", "multilabel", ML2_TRUE, ML2_PRED, 0.55 / 4, cut(2),
         beta=2.0, average="macro"),
    case("ml2-precision-weighted", "precision", "multilabel", ML2_TRUE, ML2_PRED, 2 / 4,
         average="weighted"),
    case("ml2-recall-weighted", "recall", "multilabel", ML2_TRUE, ML2_PRED, 1 / 4,
         average="weighted"),
    case("ml2-f1-weighted", "f1", "multilabel", ML2_TRUE, ML2_PRED, 2 / 3 * 2 / 4,
         average="weighted"),
    # np.average(f2, weights=support), support [1, 2, 1, 0]
    case("ml2-f2-weighted", "fbeta", "multilabel", ML2_TRUE, ML2_PRED, 0.55 * 2 / 4, cut(2),
         beta=2.0, average="weighted"),
    case("ml2-precision-samples", "precision", "multilabel", ML2_TRUE, ML2_PRED, 1 / 6,
         average="samples"),
    case("ml2-recall-samples", "recall", "multilabel", ML2_TRUE, ML2_PRED, 1 / 6,
         average="samples"),
    case("ml2-f1-samples", "f1", "multilabel", ML2_TRUE, ML2_PRED, 2 / 4 * 1 / 3,
         average="samples"),
    case("ml2-f2-samples", "fbeta", "multilabel", ML2_TRUE, ML2_PRED, 0.1666, cut(2),
         beta=2.0, average="samples"),
    *_empty_prediction_cases(0.0, "zd0"),  # also its zero_division="warn"
    *_empty_prediction_cases(1.0, "zd1"),
    *_no_labels_cases(0.0, "zd0"),
    *_no_labels_cases(1.0, "zd1"),
    # scikit-learn, test_prf_warnings, test_recall_warnings, test_precision_warnings and
    # test_fscore_warnings: the values their messages name ("... being set to 0.0")
    case("warn-precision-label-0", "precision", "multiclass", [0, 1, 2], [1, 1, 2], 0.0,
         average="none", at=0),
    case("warn-recall-label-0", "recall", "multiclass", [1, 1, 2], [0, 1, 2], 0.0,
         average="none", at=0),
    case("warn-precision-sample-1", "precision", "multilabel", [[1, 0], [1, 0]],
         [[1, 0], [0, 0]], 0.0, average="micro", multidim_average="samplewise", at=1),
    case("warn-recall-sample-1", "recall", "multilabel", [[1, 0], [0, 0]],
         [[1, 0], [1, 0]], 0.0, average="micro", multidim_average="samplewise", at=1),
    case("warn-precision-micro", "precision", "multilabel", [[1, 1], [1, 1]],
         [[0, 0], [0, 0]], 0.0, average="micro"),
    case("warn-recall-micro", "recall", "multilabel", [[0, 0], [0, 0]], [[1, 1], [1, 1]],
         0.0, average="micro"),
    case("warn-precision-binary", "precision", "binary", [1, 1], [0, 0], 0.0),
    case("warn-recall-binary", "recall", "binary", [0, 0], [1, 1], 0.0),
    *[case(f"warn-{m}-binary-empty", m, "binary", [0, 0], [0, 0], 0.0, **kw)
      for m, kw in (("precision", {}), ("recall", {}), ("f1", {}), ("fbeta", {"beta": 2.0}))],
    *[case(f"warn-{m}-micro-empty", m, "multilabel", [[0, 0], [0, 0]], [[0, 0], [0, 0]],
           0.0, average="micro", **kw) for m, kw in (("f1", {}), ("fbeta", {"beta": 2.0}))],
    # scikit-learn, test_zero_division_nan_no_warning (zero_division 0 and 1) and
    # test_zero_division_nan_warning ("warn": 0)
    *[case(f"zero-division-{m}-{zd}", m, "binary", [0], [0], zd, zero_division=zd, **kw)
      for m, kw in (("f1", {}), ("fbeta", {"beta": 1.0}), ("precision", {}),
                    ("recall", {}))
      for zd in (0.0, 1.0)],
    # scikit-learn, test_f1_for_small_binary_inputs_with_zero_division (zero_division=1)
    case("small-f1-swapped", "f1", "binary", [0, 1], [1, 0], 0.0, zero_division=1.0),
    case("small-f1-right", "f1", "binary", [0, 1], [0, 1], 1.0, zero_division=1.0),
    case("small-f1-no-positive-pred", "f1", "binary", [0, 1], [0, 0], 0.0,
         zero_division=1.0),
    case("small-f1-nothing", "f1", "binary", [0, 0], [0, 0], 1.0, zero_division=1.0),
    # scikit-learn, test_multilabel_jaccard_score
    case("jaccard-samples-y1-y2", "jaccard", "multilabel", Y1, Y2, 0.75, average="samples"),
    case("jaccard-samples-y1-y1", "jaccard", "multilabel", Y1, Y1, 1.0, average="samples"),
    case("jaccard-samples-y2-y2", "jaccard", "multilabel", Y2, Y2, 1.0, average="samples"),
    case("jaccard-samples-y2-not", "jaccard", "multilabel", Y2, NOT_Y2, 0.0,
         average="samples"),
    case("jaccard-samples-y1-not", "jaccard", "multilabel", Y1, NOT_Y1, 0.0,
         average="samples"),
    case("jaccard-samples-y1-zeros", "jaccard", "multilabel", Y1, ZEROS, 0.0,
         average="samples"),
    case("jaccard-samples-y2-zeros", "jaccard", "multilabel", Y2, ZEROS, 0.0,
         average="samples"),
    case("jaccard-macro", "jaccard", "multilabel", JAC_TRUE, JAC_PRED, 2.0 / 3,
         average="macro"),
    case("jaccard-micro", "jaccard", "multilabel", JAC_TRUE, JAC_PRED, 3.0 / 5,
         average="micro"),
    case("jaccard-samples", "jaccard", "multilabel", JAC_TRUE, JAC_PRED, 7.0 / 12,
         average="samples"),
    # labels=[0, 2] and [1, 2] with "samples": those label columns
    case("jaccard-samples-labels-0-2", "jaccard", "multilabel", [r[0::2] for r in JAC_TRUE],
         [r[0::2] for r in JAC_PRED], 1.0 / 2, average="samples"),
    case("jaccard-samples-labels-1-2", "jaccard", "multilabel", [r[1:] for r in JAC_TRUE],
         [r[1:] for r in JAC_PRED], 1.0 / 2, average="samples"),
    case("jaccard-none", "jaccard", "multilabel", JAC_TRUE, JAC_PRED, [1.0 / 2, 1.0, 1.0 / 2],
         average="none"),
    case("jaccard-macro-2", "jaccard", "multilabel", [[0, 1, 1], [1, 0, 1]], JAC_PRED,
         5.0 / 6, average="macro"),
    case("jaccard-weighted-2", "jaccard", "multilabel", [[0, 1, 1], [1, 0, 1]], JAC_PRED,
         7.0 / 8, average="weighted"),
    case("jaccard-macro-absent-label", "jaccard", "multilabel", [[0, 1]], [[0, 1]], 0.5,
         average="macro"),
    case("jaccard-samples-empty-sample", "jaccard", "multilabel", [[0, 0], [1, 1]],
         [[0, 0], [1, 1]], 0.5, average="samples"),
    # scikit-learn, test_average_binary_jaccard_score (pos_label=0: the classes swapped)
    case("jaccard-binary-miss", "jaccard", "binary", [1], [0], 0.0),
    case("jaccard-binary-nothing", "jaccard", "binary", [0, 0], [0, 0], 0.0),
    case("jaccard-binary-pos-label-0", "jaccard", "binary", _swap([0]), _swap([0]), 1.0),
    case("jaccard-binary", "jaccard", "binary", [1, 0, 1, 1, 0], [1, 0, 1, 1, 1], 3.0 / 4),
    case("jaccard-binary-pos-label-0-2", "jaccard", "binary", _swap([1, 0, 1, 1, 0]),
         _swap([1, 0, 1, 1, 1]), 1.0 / 2),
    # scikit-learn, test_jaccard_score_zero_division_warning ("warn": 0) and
    # test_jaccard_score_zero_division_set_value
    *[case(f"jaccard-samples-zero-division-{tag}", "jaccard", "multilabel",
           [[1, 0, 1], [0, 0, 0]], ZEROS, want, average="samples", zero_division=zd)
      for tag, zd, want in (("warn", 0.0, 0.0), ("0", 0.0, 0.0), ("1", 1.0, 0.5))],
]


@pytest.mark.parametrize("metric, task, target, pred, options, expected, tol", CASES)
def test_replays_literal_value(metric, task, target, pred, options, expected, tol):
    exact = _metric(metric, task, target, pred, 0.0, **options)
    want = torch.tensor(expected, dtype=torch.float64)
    assert exact.dtype == torch.float64 and exact.shape == want.shape
    torch.testing.assert_close(exact, want, atol=tol, rtol=0)
    soft = _metric(metric, task, target, pred, SOFT_TEMPERATURE, **options)
    torch.testing.assert_close(soft, exact, atol=SOFT_TOL, rtol=0)


# --- confusion matrices: the counts of every metric ------------------------------------------


def _confusion(task: str, target: list, pred: list, temperature: float,
               **options) -> torch.Tensor:
    """softmetrics' counts as scikit-learn's multilabel_confusion_matrix, (C, 2, 2) with
    [[TN, FP], [FN, TP]] per class (per sample with `multidim_average="samplewise"`)."""
    num_classes = options.pop("num_classes", None) or _num_classes(task, target, pred)
    kw = dict(task=task, temperature=temperature, **options)
    if num_classes is not None:
        kw["num_classes"] = num_classes
    s = F.soft_stat_scores(_logits(pred, task, num_classes), torch.tensor(target), **kw)
    return torch.stack([s.tn, s.fp, s.fn, s.tp], -1).reshape(-1, 2, 2)


ML_CM_TRUE = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]  # test_multilabel_confusion_matrix_multilabel
ML_CM_PRED = [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize("task, target, pred, options, expected", [
    # scikit-learn, test_confusion_matrix_binary: confusion_matrix [[22, 3], [8, 17]] is
    # TN, FP, FN, TP of class 1
    pytest.param("binary", IRIS_BINARY_TRUE, IRIS_BINARY_PRED, {}, [[[22, 3], [8, 17]]],
                 id="iris-binary"),
    # scikit-learn, test_multilabel_confusion_matrix_binary
    pytest.param("multiclass", IRIS_BINARY_TRUE, IRIS_BINARY_PRED, {},
                 [[[17, 8], [3, 22]], [[22, 3], [8, 17]]], id="iris-binary-per-class"),
    # scikit-learn, test_multilabel_confusion_matrix_multiclass (labels [0, 2, 1] and
    # [0, 2, 1, 3] reorder these; class 3 is in neither input)
    pytest.param("multiclass", IRIS_TRUE, IRIS_PRED, {},
                 [[[47, 4], [5, 19]], [[38, 6], [28, 3]], [[30, 25], [2, 18]]], id="iris"),
    pytest.param("multiclass", IRIS_TRUE, IRIS_PRED, {"num_classes": 4},
                 [[[47, 4], [5, 19]], [[38, 6], [28, 3]], [[30, 25], [2, 18]],
                  [[75, 0], [0, 0]]], id="iris-extra-label"),
    # scikit-learn, test_multilabel_confusion_matrix_multilabel; samplewise=True pools each
    # sample's labels (the binary task with the labels as an extra axis)
    pytest.param("multilabel", ML_CM_TRUE, ML_CM_PRED, {},
                 [[[1, 0], [1, 1]], [[1, 0], [1, 1]], [[0, 2], [1, 0]]], id="multilabel"),
    pytest.param("binary", ML_CM_TRUE, ML_CM_PRED, {"multidim_average": "samplewise"},
                 [[[1, 0], [1, 1]], [[1, 1], [0, 1]], [[0, 1], [2, 0]]],
                 id="multilabel-samplewise"),
    # labels=[2, 0]: those label columns
    pytest.param("binary", [[r[2], r[0]] for r in ML_CM_TRUE],
                 [[r[2], r[0]] for r in ML_CM_PRED], {"multidim_average": "samplewise"},
                 [[[0, 0], [1, 1]], [[1, 1], [0, 0]], [[0, 1], [1, 0]]],
                 id="multilabel-samplewise-labels-2-0"),
])
def test_replays_confusion_matrix(task, target, pred, options, expected):
    want = torch.tensor(expected, dtype=torch.float64)
    exact = _confusion(task, target, pred, 0.0, **options)
    torch.testing.assert_close(exact, want, atol=0, rtol=0)
    soft = _confusion(task, target, pred, SOFT_TEMPERATURE, **options)
    torch.testing.assert_close(soft, want, atol=1e-9, rtol=0)


def test_replays_multilabel_confusion_matrix_labels_order():
    """scikit-learn, test_multilabel_confusion_matrix_multilabel with labels=[2, 0], and
    test_precision_refcall_f1_score_multilabel_unordered_labels's support [0, 1, 1, 0]
    for labels [3, 0, 1, 2]: the per-class counts in the order of `labels`."""
    cm = _confusion("multilabel", ML_CM_TRUE, ML_CM_PRED, 0.0)
    want = torch.tensor([[[0, 2], [1, 0]], [[1, 0], [1, 1]]], dtype=torch.float64)
    torch.testing.assert_close(cm[[2, 0]], want, atol=0, rtol=0)
    s = F.soft_stat_scores(_logits([[0, 0, 1, 1]], "multilabel", 4),
                           torch.tensor([[1, 1, 0, 0]]), task="multilabel", num_classes=4,
                           temperature=0)
    assert (s.tp + s.fn)[[3, 0, 1, 2]].tolist() == [0, 1, 1, 0]


# --- tests whose expected values come from a generator or an identity ----------------------


@functools.cache
def _report_labels() -> tuple[list, list]:
    """The inputs of scikit-learn's test_multilabel_classification_report: two draws of
    make_multilabel_classification (seeded, the same on every run)."""
    kw = dict(n_features=1, n_samples=50, n_classes=4)
    _, y_true = make_multilabel_classification(random_state=0, **kw)
    _, y_pred = make_multilabel_classification(random_state=1, **kw)
    return y_true.tolist(), y_pred.tolist()


# scikit-learn, test_multilabel_classification_report (its text report, 2 decimals)
MULTILABEL_REPORT = {
    "precision": {"none": [0.50, 0.51, 0.29, 0.52], "micro": 0.50, "macro": 0.45,
                  "weighted": 0.45, "samples": 0.46},
    "recall": {"none": [0.67, 0.74, 0.08, 0.56], "micro": 0.51, "macro": 0.51,
               "weighted": 0.51, "samples": 0.42},
    "f1": {"none": [0.57, 0.61, 0.12, 0.54], "micro": 0.50, "macro": 0.46,
           "weighted": 0.46, "samples": 0.40},
}


@pytest.mark.parametrize("metric, average, expected", [
    pytest.param(m, a, v, id=f"{m}-{a}") for m, row in MULTILABEL_REPORT.items()
    for a, v in row.items()])
def test_replays_multilabel_classification_report(metric, average, expected):
    target, pred = _report_labels()
    exact = _metric(metric, "multilabel", target, pred, 0.0, average=average)
    want = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(exact, want, atol=rounded(2), rtol=0)
    soft = _metric(metric, "multilabel", target, pred, SOFT_TEMPERATURE, average=average)
    torch.testing.assert_close(soft, exact, atol=SOFT_TOL, rtol=0)


def test_replays_multilabel_classification_report_support():
    target, _ = _report_labels()
    assert torch.tensor(target).sum(0).tolist() == [24, 27, 26, 27]


@pytest.mark.parametrize("target, pred, value", [
    # scikit-learn, test_balanced_accuracy_score: the three cases of letters, as indices
    # (a, b, c = 0, 1, 2). The test asserts that balanced accuracy equals the macro
    # recall over the classes of y_true; the value is that mean worked out from the counts
    pytest.param([0, 1, 0, 1], [0, 0, 0, 1], (1 + 1 / 2) / 2, id="two-classes"),
    pytest.param([0, 1, 2, 1], [0, 0, 0, 1], (1 + 1 / 2 + 0) / 3, id="class-never-predicted"),
    pytest.param([0, 0, 0, 1], [0, 1, 2, 1], (1 / 3 + 1) / 2, id="class-never-true"),
])
def test_replays_balanced_accuracy(target, pred, value):
    kw = dict(task="multiclass", num_classes=3)
    logits, y = _logits(pred, "multiclass", 3), torch.tensor(target)
    balanced = F.soft_accuracy(logits, y, average="macro", temperature=0, **kw)
    recall = F.soft_recall(logits, y, average="none", temperature=0, **kw)
    assert balanced.item() == pytest.approx(recall[sorted(set(target))].mean().item(),
                                            abs=EXACT)
    assert balanced.item() == pytest.approx(value, abs=EXACT)
    soft = F.soft_accuracy(logits, y, average="macro", temperature=SOFT_TEMPERATURE, **kw)
    assert soft.item() == pytest.approx(value, abs=SOFT_TOL)


@pytest.mark.parametrize("metric", ["recall", "precision", "f1"])
@pytest.mark.parametrize("average", ["micro", "weighted"])
def test_replays_extra_labels_change_only_macro(metric, average):
    """scikit-learn, test_precision_recall_f_extra_labels: labels that are in neither
    input change the macro average only, not micro or weighted (softmetrics:
    absent_classes="include" against the default)."""
    target, pred = [1, 3, 3, 2], [1, 1, 3, 2]
    kw = dict(task="multiclass", num_classes=5, average=average, temperature=0)
    logits, y = _logits(pred, "multiclass", 5), torch.tensor(target)
    every = METRICS[metric](logits, y, absent_classes="include", **kw)
    default = METRICS[metric](logits, y, **kw)
    assert every.item() == default.item()


@pytest.mark.parametrize("average, labels", [
    ("macro", None), ("weighted", None), ("micro", None), ("none", None),
    ("macro", [0, 1]), ("micro", [0, 1]), ("macro", [2, 1]), ("micro", [0]),
])
def test_replays_multiclass_jaccard_equals_binarized(average, labels):
    """scikit-learn, test_multiclass_jaccard_score: the multiclass Jaccard index equals
    that of the one-hot (label-binarized) indicator arrays, for every average and label
    subset (softmetrics: a 0/1 `class_weights`). ant, bird, cat = 0, 1, 2."""
    target, pred = [0, 0, 2, 2, 0, 2, 1, 1], [2, 0, 2, 2, 0, 1, 1, 2]
    kw = dict(num_classes=3, average=average, temperature=0)
    if labels is not None:
        kw["class_weights"] = torch.zeros(3, dtype=torch.float64).index_fill_(
            0, torch.tensor(labels), 1.0)
    multi = F.soft_jaccard_index(_logits(pred, "multiclass", 3), torch.tensor(target),
                                 task="multiclass", **kw)
    one_hot = torch.nn.functional.one_hot(torch.tensor(target), 3)
    binarized = F.soft_jaccard_index(_logits(torch.nn.functional.one_hot(
        torch.tensor(pred), 3).tolist(), "multilabel", 3), one_hot, task="multilabel", **kw)
    torch.testing.assert_close(multi, binarized, atol=EXACT, rtol=0)
