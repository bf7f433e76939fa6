"""Tables, console summaries and plots of the segmentation and multilabel tasks of
`compare_ce.py` (their runs are in `_segmentation`): a record in, Markdown, text or PNG
files out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _canvas
import numpy as np
from _common import HOLM_NOTE, console_verdict, few_seeds_caution, mean_ci, verdict_mark

NUM_CLASSES = _canvas.NUM_CLASSES
RARE = [d + 1 for d in _canvas.RARE_DIGITS]  # their pixel classes
SEG_METRICS = {"miou": "mIoU", "dice": "macro Dice", "pixel_acc": "pixel accuracy",
               "rare_iou": "IoU of the rare digits"}
ML_METRICS = {"macro_f1": "macro F1", "micro_f1": "micro F1"}

# ---------------------------------------------------------------------------------------
# tables, console and plots


def _cell(values: list[float]) -> str:
    m, ci = mean_ci(values)
    return f"{m:.3f} ± {ci:.3f}" if np.isfinite(ci) else f"{m:.3f}"


def _diff(c: dict[str, Any]) -> str:
    return f"{c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"


def _provenance(record: dict[str, Any]) -> list[str]:
    if "run" not in record or "machine" not in record:
        return []
    from _common import provenance_line

    mc, run = record["machine"], record["run"]
    versions = ", ".join(f"{k} {mc[k]}" for k in ("torch", "scikit-learn", "softmetrics")
                         if k in mc)
    return [f"{provenance_line(run, mc, run['seconds'])}; {versions}.", ""]


def _tables(record: dict[str, Any], metrics: dict[str, str], bases: dict[str, str]
            ) -> list[str]:
    losses = record["losses"]
    lines = ["Test metrics, mean ± half-width of the 95% t-interval over "
             f"{len(record['seeds'])} seeds; each loss's configuration is chosen on "
             "validation for each metric.", "",
             "| loss | " + " | ".join(metrics.values()) + " |",
             "|---|" + "---:|" * len(metrics)]
    for r in losses.values():
        lines.append(f"| {r['label']} | "
                     + " | ".join(_cell(r["metrics"][m]) for m in metrics) + " |")
    for base, title in bases.items():
        lines += ["", f"Difference to {title}, paired by seed: mean [95% t interval, "
                  "corrected for the overlap of re-split data] and verdict (win: the "
                  "interval lies above 0; loss: below 0; tie otherwise). The loss's own "
                  f"metric is in bold. {HOLM_NOTE}.", "",
                  "| loss | " + " | ".join(metrics.values()) + " |",
                  "|---|" + "---:|" * len(metrics)]
        for key, comp in record["comparisons"][base].items():
            cells = []
            for m in metrics:
                text = f"{_diff(comp[m])} {verdict_mark(comp[m])}"
                cells.append(f"**{text}**" if m == losses[key]["metric"] else text)
            lines.append(f"| {losses[key]['label']} | " + " | ".join(cells) + " |")
    return lines


def class_iou(entry: dict[str, Any]) -> np.ndarray:
    """Each class's test IoU, mean over the seeds where it is present (NaN: none)."""
    iou = np.array(entry["class_iou"], dtype=np.float64)
    seen = np.isfinite(iou).sum(0)
    return np.where(seen > 0, np.nansum(iou, axis=0) / np.maximum(seen, 1), np.nan)


def seg_markdown(record: dict[str, Any]) -> str:
    lines = [*_provenance(record), record["description"], ""]
    lines += _tables(record, SEG_METRICS, {"ce": "CE"})
    names = ["background", *[f"digit {d}" + (" (rare)" if d + 1 in RARE else "")
                             for d in range(_canvas.NUM_DIGITS)]]
    lines += ["", "Test IoU per class (configuration chosen by mIoU), mean over seeds; the "
              "share of test pixels in the header.", "",
              "| loss | " + " | ".join(f"{n} ({f:.2%})" for n, f in
                                      zip(names, record["class_fractions"], strict=True)) + " |",
              "|---|" + "---:|" * len(names)]
    for r in record["losses"].values():
        iou = class_iou(r)
        lines.append(f"| {r['label']} | " + " | ".join(f"{v:.3f}" for v in iou) + " |")
    return "\n".join(lines) + "\n"


def ml_markdown(record: dict[str, Any]) -> str:
    lines = [*_provenance(record), record["description"], ""]
    lines += _tables(record, ML_METRICS, {"bce": "BCE", "bce_thr": "BCE + tuned thresholds"})
    return "\n".join(lines) + "\n"


def _console(record: dict[str, Any], title: str, metrics: dict[str, str],
             bases: dict[str, str]) -> str:
    losses = record["losses"]
    out = [f"{title}: each loss against {' and '.join(bases.values())} on the loss's own test "
           f"metric (means over {len(record['seeds'])} seeds), their paired difference, its "
           "95% t interval and the verdict ((Holm): it holds under Holm's correction).", "",
           *few_seeds_caution(len(record["seeds"]))]
    head = (f"  {'loss':<28}{'metric':<16}{'value':>7}{'base':>8}{'value-base':>12}  "
            f"{'95% interval':<20}verdict")
    out += [head, "  " + "-" * (len(head) - 2)]
    for base, name in bases.items():
        out.append(f"against {name}")
        for key, comp in record["comparisons"][base].items():
            m = losses[key]["metric"]
            value = float(np.mean(losses[key]["metrics"][m]))
            ref = float(np.mean(losses[base]["metrics"][m]))
            c = comp[m]
            out.append(f"  {losses[key]['label']:<28}{metrics[m]:<16}{value:7.3f}{ref:8.3f}"
                       f"{c['mean_diff']:+12.3f}  [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
                       f"   {console_verdict(c)}")
    return "\n".join(out)


def seg_console(record: dict[str, Any]) -> str:
    return _console(record, "Segmentation", SEG_METRICS, {"ce": "CE"})


def ml_console(record: dict[str, Any]) -> str:
    return _console(record, "Multilabel", ML_METRICS,
                    {"bce": "BCE", "bce_thr": "BCE + tuned thresholds"})


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def best_surrogate(record: dict[str, Any], base: str = "ce", metric: str = "miou") -> str:
    """The trained loss other than `base` with the highest mean test `metric`."""
    return max((k for k in record["losses"] if k != base),
               key=lambda k: float(np.mean(record["losses"][k]["metrics"][metric])))


def seg_plots(record: dict[str, Any], out: Path) -> list[str]:
    """The example masks (input, truth, CE, best surrogate) and the IoU per class."""
    from matplotlib.colors import ListedColormap

    plt = _pyplot()
    ex, losses = record["examples"], record["losses"]
    best = best_surrogate(record)
    colors = ["black", *[plt.get_cmap("tab10")(d) for d in range(_canvas.NUM_DIGITS)]]
    cmap = ListedColormap(colors)

    def grid(rows: list[str]) -> np.ndarray:  # ink levels and classes are hex digits
        return np.array([[int(ch, 16) for ch in row] for row in rows])

    columns = [("input", ex["image"]), ("truth", ex["truth"]), ("CE", ex["pred"]["ce"]),
               (losses[best]["label"], ex["pred"][best])]
    n = len(ex["index"])
    fig, axes = plt.subplots(n, 4, figsize=(8, 2.1 * n), squeeze=False)
    for i in range(n):
        for j, (title, masks) in enumerate(columns):
            ax = axes[i, j]
            if j == 0:
                ax.imshow(grid(masks[i]), cmap="gray_r", vmin=0, vmax=15)
            else:
                ax.imshow(grid(masks[i]), cmap=cmap, vmin=0, vmax=NUM_CLASSES - 1,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[d + 1]) for d in range(10)]
    fig.legend(handles, [str(d) for d in range(10)], loc="lower center", ncol=10,
               fontsize=8, title="digit", title_fontsize=8)
    fig.suptitle(f"Test canvases of seed {record['seeds'][0]} (rare digits "
                 f"{' and '.join(map(str, _canvas.RARE_DIGITS))} first); configurations "
                 "chosen by validation mIoU", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    masks_png = "compare_ce_segmentation_masks.png"
    fig.savefig(out / masks_png, dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.4))
    keys = list(losses)
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        iou = class_iou(losses[key])
        ax.bar(np.arange(NUM_CLASSES) + (k - (len(keys) - 1) / 2) * width, iou, width,
               label=losses[key]["label"], color="0.3" if key == "ce" else f"C{k}")
    ax.set_xticks(range(NUM_CLASSES), ["bg", *[f"{d}*" if d + 1 in RARE else str(d)
                                               for d in range(10)]])
    ax.set_ylabel("test IoU")
    ax.set_title(f"IoU per class, mean over {len(record['seeds'])} seeds (* rare and small)",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    iou_png = "compare_ce_segmentation_iou.png"
    fig.savefig(out / iou_png, dpi=90)
    plt.close(fig)
    return [masks_png, iou_png]


def ml_plots(record: dict[str, Any], out: Path) -> list[str]:
    """Macro and micro F1 by loss, mean and 95% interval over seeds."""
    plt = _pyplot()
    losses = record["losses"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
    keys = list(losses)
    ypos = np.arange(len(keys))[::-1]
    for ax, (m, title) in zip(axes, ML_METRICS.items(), strict=True):
        for key, y in zip(keys, ypos, strict=True):
            mean, ci = mean_ci(losses[key]["metrics"][m])
            ax.errorbar(mean, y, xerr=np.nan_to_num(ci), fmt="o", capsize=3, ms=4,
                        color="0.3" if key in ("bce", "bce_thr") else "C0")
        ax.axvline(float(np.mean(losses["bce"]["metrics"][m])), color="0.6", ls="--", lw=0.8)
        ax.set_title(f"test {title}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, [losses[k]["label"] for k in keys], fontsize=8)
    fig.suptitle(f"Multilabel digits: mean and 95% interval over {len(record['seeds'])} "
                 "seeds (dashed: BCE)", fontsize=10)
    fig.tight_layout()
    name = "compare_ce_multilabel.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return [name]
