"""The functional API: every metric as a function of raw scores and targets.

`soft_<metric>(input, target, *, temperature=1.0, ...)` returns the smooth surrogate;
`temperature=0` returns the exact metric.
"""

from __future__ import annotations

from .accuracy import soft_accuracy, soft_top_k_accuracy
from .agreement import soft_cohen_kappa
from .classification import (
    StatScores,
    soft_f1_score,
    soft_fbeta_score,
    soft_jaccard_index,
    soft_matthews_corrcoef,
    soft_precision,
    soft_recall,
    soft_stat_scores,
    soft_tversky_index,
)
from .contrastive import (
    info_nce,
    mutual_information_bound,
    nce_loss,
    retrieval_accuracy,
    sigmoid_contrastive_loss,
)
from .exact_match import soft_exact_match
from .ranking import soft_auroc, soft_average_precision, soft_calibrated_average_precision
from .retrieval import (
    soft_ndcg,
    soft_precision_at_k,
    soft_recall_at_k,
    soft_reciprocal_rank,
    soft_retrieval_average_precision,
)
from .text import bleu_score, expected_bleu, soft_bleu_score

__all__ = [
    "StatScores",
    "bleu_score",
    "expected_bleu",
    "info_nce",
    "mutual_information_bound",
    "nce_loss",
    "retrieval_accuracy",
    "sigmoid_contrastive_loss",
    "soft_accuracy",
    "soft_auroc",
    "soft_average_precision",
    "soft_bleu_score",
    "soft_calibrated_average_precision",
    "soft_cohen_kappa",
    "soft_exact_match",
    "soft_f1_score",
    "soft_fbeta_score",
    "soft_jaccard_index",
    "soft_matthews_corrcoef",
    "soft_ndcg",
    "soft_precision",
    "soft_precision_at_k",
    "soft_recall",
    "soft_recall_at_k",
    "soft_reciprocal_rank",
    "soft_retrieval_average_precision",
    "soft_stat_scores",
    "soft_top_k_accuracy",
    "soft_tversky_index",
]
