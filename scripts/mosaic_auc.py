"""The table of docs/slide.md, "Checked on real mosaics": for each IDC patient, its mosaic (``trainer slide-mosaic``)
scored with ``trainer slide`` (4 um/px, no overlap) against ``trainer evaluate`` on the same patient's patches, with
and without slide context (``trainer context``'s 3x3 mean). Tile i of the mosaic is patch i, so the two must agree.

    uv run python scripts/mosaic_auc.py assets/models/demo-cnn ../shared/data/idc 8914 8951 8955 9022 9076 9124
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(model, ckpt: Path, idc: Path, patient: str, tmp: Path) -> str:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from trainer.context import neighbour_mean
    from trainer.evaluate import evaluate_checkpoint
    from trainer.runfiles import read_predictions
    from trainer.slide import open_slide, score_slide
    from trainer.slide.mosaic import build_mosaic, read_patches

    src = idc / patient
    shutil.copytree(src, tmp / "idc" / patient)  # the one patient as a dataset
    tif, table = build_mosaic(src, tmp / f"{patient}.tif")
    evaluate_checkpoint(ckpt, tmp / "idc", out_dir=tmp / "eval", progress=False)
    rows = read_predictions(tmp / "eval" / "predictions.csv")
    evaluated = {r["path"].rsplit("/", 1)[-1]: float(r["prob_malignant"]) for r in rows}
    patches = {(r["x"], r["y"]): r for r in read_patches(table)}
    out, diff, n = [], 0.0, 0
    for context in (False, True):
        with open_slide(tif) as slide:
            result = score_slide(model, slide, context=context)
        matched = [(t, patches[(t.x, t.y)]) for t in result.scored if (t.x, t.y) in patches]
        matched = [(t, p) for t, p in matched if p["path"].rsplit("/", 1)[-1] in evaluated]
        y = [p["label"] for _, p in matched]
        ev = np.array([evaluated[p["path"].rsplit("/", 1)[-1]] for _, p in matched])
        if context:
            ev = neighbour_mean([patient] * len(ev), [t.x for t, _ in matched], [t.y for t, _ in matched], ev)
        tiles = np.array([t.prob_malignant for t, _ in matched])
        diff = max(diff, float(np.abs(tiles - ev).max()))
        out += [roc_auc_score(y, tiles), roc_auc_score(y, ev)]
        n = len(matched)
    # evaluate on all the patient's patches (the slide path drops background tiles), with context over them all
    by_name = {p["path"].rsplit("/", 1)[-1]: p for p in patches.values()}
    allp = [(by_name[k], v) for k, v in evaluated.items() if k in by_name]
    y_all = [p["label"] for p, _ in allp]
    p_all = np.array([v for _, v in allp])
    ctx_all = neighbour_mean([patient] * len(allp), [p["x"] for p, _ in allp], [p["y"] for p, _ in allp], p_all)
    a, b = roc_auc_score(y_all, p_all), roc_auc_score(y_all, ctx_all)
    cells = [
        patient,
        str(len(patches)),
        str(n),
        *(f"{v:.4f}" for v in out),
        f"{diff:.1e}",
        f"{a:.4f} / {b:.4f} ({len(allp)})",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("idc", help="the IDC folder (one subfolder per patient)")
    ap.add_argument("patients", nargs="+")
    args = ap.parse_args()
    from trainer.models import load_checkpoint

    model = load_checkpoint(args.model, device="cpu")
    print(
        "| patient | patches | tissue tiles matched | tile AUC | evaluate AUC (same patches) | tile AUC, context "
        "| evaluate AUC, context | max abs. diff. of P | evaluate on all its patches: AUC / context (n) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for patient in args.patients:
        with tempfile.TemporaryDirectory() as tmp:
            print(one(model, Path(args.model), Path(args.idc), patient, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
