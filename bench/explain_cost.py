"""What checking an explanation costs (issue 27), per patch on the CPU, as ratios to a plain prediction measured in
the same run, the variants alternating on each patch (median of ``--runs``):

- plain: the trusted prediction of one patch (``trainer.predict.predict_images``, what the app shows);
- map: the prediction's explanation (Grad-CAM for a CNN, label-token attention for a VLM; ``explainer_for``);
- faithfulness: ``trainer.explain.faithfulness.score_map`` of that map (18 ROAD-perturbed copies, imputed and
  scored in one batch): ROAD combined, the drops at 20 %, deletion / insertion;
- sentence: the same with ``percentiles=(80,)``: only the two copies the line under a map needs (the 20 % most /
  least relevant removed);
- sanity: ``trainer.explain.sanity.sanity_check`` of that patch (one map per randomised layer, full cascade);
- pointing: the map of a 3 x 3 IDC mosaic at the training scale and its energy inside the tumour mask.

    OMP_NUM_THREADS=1 nice -n 10 uv run python bench/explain_cost.py --clock cpu
    uv run python bench/explain_cost.py --checkpoint assets/models/demo-cnn --runs 10 --json out.json

Patches are real IDC patches from ``../shared/data/idc`` when that folder is there, else generated ones (the
pointing line then uses a mosaic of them with a made-up mask: its cost, not its score, is what is measured)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import trust_cost
from trust_cost import ROOT, header, patches

sys.path.insert(0, str(ROOT))
CLOCK = time.perf_counter  # --clock cpu: time.process_time


def timed(fn, *args, **kw) -> tuple[float, object]:
    """(seconds by CLOCK, result) of one call."""
    t0 = CLOCK()
    out = fn(*args, **kw)
    return CLOCK() - t0, out


def bench_model(path: str, images, runs: int, sanity_runs: int) -> dict:
    import numpy as np
    from PIL import Image

    from trainer.explain.base import explainer_for
    from trainer.explain.faithfulness import score_map
    from trainer.explain.pointing import at_scale, energy_pointing
    from trainer.explain.sanity import sanity_check
    from trainer.models import load_checkpoint
    from trainer.predict import predict_images

    model = load_checkpoint(path, device="cpu")
    explainer = explainer_for(model)
    options = {"method": "Grad-CAM"} if model.adapter.family == "cnn" else {}

    def explain(m, ims):
        return explainer_for(m).explain_many(list(ims), **options)

    side = 3
    mosaic = Image.new("RGB", (images[0].width * side, images[0].height * side))
    for n in range(side * side):
        mosaic.paste(images[n % len(images)], ((n % side) * images[0].width, (n // side) * images[0].height))
    mask = np.zeros((mosaic.height, mosaic.width), dtype=bool)
    mask[:, : images[0].width] = True
    scaled = at_scale(model, side)
    size_before = getattr(model.adapter, "input_size", None)

    def pointing():
        try:
            (e,) = explain(scaled, [mosaic])
        finally:
            model.adapter.input_size = size_before
        return energy_pointing(e.heatmap, mask)

    for im in images[:2]:  # warm-up: imports, transforms, the imputer's first solve
        (e,) = explainer.explain_many([im], **options)
        predict_images(model, [im])
        score_map(model, im, e.heatmap, target=e.target)
    pointing()

    def maps_of(m, ims):
        return [x.heatmap for x in explain(m, ims)]

    t = {"plain": [], "map": [], "faithfulness": [], "sentence": [], "pointing": [], "sanity": []}
    for i in range(runs):
        im = images[i % len(images)]
        t["plain"].append(timed(predict_images, model, [im])[0])
        seconds, (e,) = timed(explainer.explain_many, [im], **options)
        t["map"].append(seconds)
        t["faithfulness"].append(timed(score_map, model, im, e.heatmap, target=e.target)[0])
        t["sentence"].append(timed(score_map, model, im, e.heatmap, target=e.target, percentiles=(80,))[0])
        t["pointing"].append(timed(pointing)[0])
        if i < sanity_runs:
            t["sanity"].append(timed(sanity_check, model, [im], maps_of, trained=[e.heatmap])[0])
    ms = {k: statistics.median(v) * 1000.0 for k, v in t.items() if v}
    from trainer.explain.sanity import cascade

    return {
        "checkpoint": path,
        "family": model.adapter.family,
        "map": "Grad-CAM" if options else "attention",
        "layers": len(cascade(model)),
        "ms": ms,
        "ratio": {k: v / ms["plain"] for k, v in ms.items()},
        "runs": runs,
        "sanity_runs": min(runs, sanity_runs),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", help="default: assets/models/demo-cnn and demo-vlm")
    p.add_argument("--runs", type=int, default=20, help="patches per variant")
    p.add_argument("--sanity-runs", type=int, default=3, help="patches for the (slow) sanity check")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="cpu: this process's CPU time")
    p.add_argument("--idc", help="the IDC folder (default ../shared/data/idc beside the repository)")
    args = p.parse_args(argv)
    if args.idc:
        trust_cost.IDC = Path(args.idc)

    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    paths = args.checkpoint or [str(ROOT / "assets/models/demo-cnn"), str(ROOT / "assets/models/demo-vlm")]
    images, what = patches(max(args.runs, 9))
    out = {**header(args.clock, what), "models": [bench_model(p, images, args.runs, args.sanity_runs) for p in paths]}
    print(f"{what}; {out['machine']}; load average {out['load_average']:.1f}; {args.clock} clock")
    keys = ("plain", "map", "faithfulness", "sentence", "pointing", "sanity")
    print(f"{'model':<12} {'map':<10} " + " ".join(f"{k:>22}" for k in keys))
    for m in out["models"]:
        cells = [f"{m['ms'][k]:8.1f} ms {m['ratio'][k]:8.1f}x" for k in keys]
        print(f"{Path(m['checkpoint']).name:<12} {m['map']:<10} " + " ".join(f"{c:>22}" for c in cells))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
