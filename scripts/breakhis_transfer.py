"""results/breakhis100x/README.md, "Other magnifications": the 100X cross-validation's fold models on the 40X,
200X and 400X fields (too few slides there for a CV of their own). A field is scored only by models that never
trained or validated on its patient (the folds' cautious grouping: slides sharing <YY>-<number>): a slide of fold
k's test patients by fold k's model; a slide whose patient has no 100X field (in no fold) by the mean of the five
fold models. Slides a fold trained on are never scored by it.

    uv run python scripts/breakhis_transfer.py runs/breakhis100x_cnn ../shared/data/breakhis --json OUT.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OTHER = ("40X", "200X", "400X")


def fold_checkpoints(run: Path) -> dict[int, Path]:
    """``{k: <run>/<model>/100X/fold<k>/best}`` of a one-model 100X run."""
    found = {int(p.parent.name.removeprefix("fold")): p for p in sorted(run.glob("*/100X/fold*/best"))}
    if not found:
        raise SystemExit(f"{run}: no <model>/100X/fold<k>/best checkpoints")
    return found


def transfer(run: Path, data: Path, threads: int = 1) -> dict:
    import numpy as np

    from trainer.data.grouping import group_key
    from trainer.evaluate import evaluate_checkpoint
    from trainer.metrics import classification_metrics
    from trainer.threads import set_torch_threads

    set_torch_threads(threads)
    splits = json.loads((run / "splits.json").read_text())
    folds = {f["fold"]: f for f in splits["folds"]}
    in_cv = {p for f in folds.values() for part in ("train_patients", "val_patients", "test_patients") for p in f[part]}
    # The cautious rule of the folds (trainer.data.grouping): slides sharing <YY>-<number> may be one person, so a
    # slide is unseen only when no slide of its group was in the CV.
    cv_groups = {group_key(p) for p in in_cv}
    probs: dict[str, list[float]] = defaultdict(list)  # path -> P(malignant) of each model allowed to score it
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k, ckpt in fold_checkpoints(run).items():
            tested = {group_key(t) for t in folds[k]["test_patients"]}
            evaluate_checkpoint(ckpt, data, out_dir=Path(tmp) / f"fold{k}", progress=False)
            with (Path(tmp) / f"fold{k}" / "predictions.csv").open() as f:
                for r in csv.DictReader(f):
                    if Path(r["path"]).parent.name not in OTHER:  # BreakHis: <slide>/<magnification>/<field>
                        continue
                    group = group_key(r["patient_id"])
                    unseen = group not in cv_groups
                    if group in tested or unseen:
                        probs[r["path"]].append(float(r["prob_malignant"]))
                        rows[r["path"]] = {**r, "scored_by": "all folds (mean)" if unseen else f"fold {k}"}
    table = {}
    for mag in OTHER:
        paths = [p for p in probs if Path(p).parent.name == mag]
        y = np.array([int(rows[p]["label"]) for p in paths])
        p_mal = np.array([float(np.mean(probs[p])) for p in paths])
        slides = [rows[p]["patient_id"] for p in paths]
        m = classification_metrics(y, p_mal, slides) if len(paths) else {"n": 0}
        table[mag] = {
            "images": len(paths),
            "slides": len(set(slides)),
            "benign": int((y == 0).sum()),
            "malignant": int((y == 1).sum()),
            "by_fold_test": sum(rows[p]["scored_by"] != "all folds (mean)" for p in paths),
            "metrics": m,
        }
    return {"run": str(run), "data": str(data), "magnifications": table}


def markdown(result: dict) -> str:
    def f(v):
        return "—" if v is None or v != v else f"{v:.3f}"

    lines = [
        "| magnification | images (benign / malignant) | slides | scored by its fold's model | ROC-AUC | accuracy | balanced acc. |",
        "|---|---|---|---|---|---|---|",
    ]
    for mag, t in result["magnifications"].items():
        m = t["metrics"]
        lines.append(
            f"| {mag} | {t['images']} ({t['benign']} / {t['malignant']}) | {t['slides']} | {t['by_fold_test']} | "
            f"{f(m.get('roc_auc'))} | {f(m.get('accuracy'))} | {f(m.get('balanced_accuracy'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a 100X CV run folder (its splits.json and fold checkpoints)")
    ap.add_argument("data", type=Path, help="the BreakHis folder")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    result = transfer(args.run, args.data, args.threads)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
