"""The rows of README.md's stain-normalisation table: each argument a folder of ``trainer evaluate`` output, or a
quoted glob of several (the five fold models of a CV run), printed as one row: the metric, or its mean ± sample
std over the folders, with the per-folder ROC-AUC.

    python results/cross_dataset/folds_table.py 'results/cross_dataset/breakhis100x-cnn/fold*/ucsb-macenko'
"""

import glob
import json
import statistics
import sys
from pathlib import Path


def cell(values):
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


for pattern in sys.argv[1:]:
    runs = [json.loads(Path(d, "metrics.json").read_text()) for d in sorted(glob.glob(pattern))]
    if not runs:
        sys.exit(f"{pattern}: no metrics.json")
    cols = {
        "ROC-AUC": [r["metrics"]["roc_auc"] for r in runs],
        "accuracy": [r["metrics"]["accuracy"] for r in runs],
        "balanced acc.": [r["metrics"]["balanced_accuracy"] for r in runs],
        "ECE": [r["metrics"]["ece"] for r in runs],
        "flagged OOD": [r["trust"]["ood_share"] for r in runs],
        "abstained": [r["trust"]["abstain_share"] for r in runs],
        "ROC-AUC answered": [r["metrics_answered"]["roc_auc"] for r in runs],
    }
    stain = {r.get("stain_normalization") or "none" for r in runs}
    print(
        f"| {pattern} ({len(runs)}) | {'/'.join(sorted(stain))} | " + " | ".join(cell(v) for v in cols.values()) + " |"
    )
    if len(runs) > 1:
        print("  per folder ROC-AUC: " + " ".join(f"{v:.3f}" for v in cols["ROC-AUC"]))
