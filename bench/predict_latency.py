"""Predict tab latency on the CPU: per patch, the median over runs of

- CNN: class probabilities only;            CNN + Grad-CAM (the same forward pass, backward to the target layer);
- VLM: class probabilities only;            VLM + attention (probabilities + the label-token attention map);

with the ratios explained/plain measured in the same run (goal for Grad-CAM: <= 1.5x), the VLM's free-text
answer, every CAM method, and the app's cold start (process start -> the server answers HTTP 200) and the
first prediction after it (loading the models).

    OMP_NUM_THREADS=2 nice -n 10 uv run python bench/predict_latency.py
    uv run python bench/predict_latency.py --cnn demo:demo-cnn --vlm demo:demo-vlm --runs 30 --json out.json

Models default to the bundled demo models (``assets/models/``); any registry key works (``run:...``).
``--baseline-cnn KEY`` measures a second CNN's plain / Grad-CAM pair in the same run (e.g. a previous demo model
copied to ``assets/models/old-demo-cnn``), so the before/after ratios share the machine's state.
Runs alternate plain / explained per patch so a busy machine slows both alike."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from serve import ROOT, app_env, free_port, served

sys.path.insert(0, str(ROOT))


def _median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000.0


def bench_pair(plain, explained, images, runs: int, warmup: int = 2) -> tuple[float, float]:
    for im in images[:warmup]:
        plain(im), explained(im)
    a, b = [], []
    for i in range(runs):
        im = images[i % len(images)]
        t0 = time.perf_counter()
        plain(im)
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        explained(im)
        b.append(time.perf_counter() - t0)
    return _median_ms(a), _median_ms(b)


def bench_one(fn, images, runs: int, warmup: int = 1) -> float:
    for im in images[:warmup]:
        fn(im)
    ts = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(images[i % len(images)])
        ts.append(time.perf_counter() - t0)
    return _median_ms(ts)


def plain_proba(adapter, size: int):
    """The model's own probabilities of one patch, nothing else (no trust checks): the Grad-CAM variants' baseline."""
    import torch

    tf = adapter.transform(False, size)

    def run(im):
        with torch.inference_mode():
            return adapter.predict_proba(adapter.collate([tf(im)], [0]))

    return run


def cnn_pair(key: str, cnn, images, runs: int) -> dict:
    """Plain vs Grad-CAM (default target) medians of one loaded CNN, with the target layer and its map side: the
    app's calls (``histoapp.models.inference``) for one patch, trust checks included."""
    from histoapp.models.inference import classify_many, explain_many
    from trainer.explain.cam import target_layer

    plain, cam = bench_pair(
        lambda im: classify_many(cnn, [im]), lambda im: explain_many(cnn, [im], method="Grad-CAM"), images, runs
    )
    model = cnn.adapter.module
    layer = target_layer(model, getattr(cnn.adapter.config, "name", None), cnn.input_size)
    grid: dict = {}

    def record(module, inputs, output) -> None:  # returns None: the output is left as it is
        grid.setdefault("side", tuple(output.shape[-2:]))

    handle = layer.register_forward_hook(record)
    try:
        classify_many(cnn, images[:1])
    finally:
        handle.remove()
    return {
        "model": key,
        "input_size": cnn.input_size,
        "target": next(n for n, m in model.named_modules() if m is layer),
        "map": "x".join(map(str, grid.get("side", ()))),
        "plain_ms": plain,
        "gradcam_ms": cam,
        "ratio_gradcam_plain": cam / plain,
    }


def gradcam_variants(cnn, images, runs: int) -> list[dict]:
    """Where Grad-CAM's cost comes from: the backward pass from the logits down to the target layer. At 64 px
    and the usual output stride 32 a ResNet's ``layer4`` (512 channels on a 2x2 grid) is most of the forward
    time, since its weights dominate and the grid is tiny, and the backward pass through it costs about as much
    again: a ``layer3`` target (4x4) costs ~1.5-1.8x; the demo CNN since issue 30 runs ``layer4`` at output
    stride 16 (4x4) and explains it. Rows: the same model with ``layer4`` as target, the same architecture at
    128 px with the default ``layer4`` target (4x4, backward through avgpool + fc only), a ResNet34 at 224 px."""
    from trainer.config import ModelConfig
    from trainer.explain.cam import explain_cnn_many
    from trainer.models.cnn import CNNAdapter, resnet_stride

    rows = []
    side = -(-cnn.input_size // resnet_stride(cnn.adapter.module))
    plain, cam = bench_pair(
        plain_proba(cnn.adapter, cnn.input_size),
        lambda im: explain_cnn_many(cnn.adapter, [im], input_size=cnn.input_size, layer="layer4"),
        images,
        runs,
    )
    rows.append(
        {
            "what": f"{cnn.entry.key}, {cnn.input_size} px, target layer4 ({side}x{side} map)",
            "plain_ms": plain,
            "gradcam_ms": cam,
        }
    )
    # The same architecture at 128 px, where layer4 itself gives a 4x4 map (the backward pass is then only
    # avgpool + fc), and a ResNet34 at the paper's 224 px; random weights: the cost does not depend on them.
    arch = getattr(cnn.adapter.config, "name", "resnet18")
    for name, size, grid in ((arch, 128, "4x4"), ("resnet34", 224, "7x7")):
        big = CNNAdapter(ModelConfig(name=name, pretrained=False))
        big.module.eval()
        for p in big.module.parameters():
            p.requires_grad_(False)
        plain, cam = bench_pair(
            plain_proba(big, size),
            lambda im, big=big, size=size: explain_cnn_many(big, [im], input_size=size),
            images,
            max(5, runs // 2),
        )
        rows.append(
            {
                "what": f"{name} (random weights), {size} px, default target layer4[-1] ({grid} map)",
                "plain_ms": plain,
                "gradcam_ms": cam,
            }
        )
    for r in rows:
        r["ratio"] = r["gradcam_ms"] / r["plain_ms"]
    return rows


def cold_start(timeout_s: float = 180.0) -> dict:
    """Start the app in a fresh process (as ``uv run app.py`` does) and time until it serves its page. The models
    load in the background after that (``bench/classroom.py`` times the first served prediction); the in-process
    first predictions are timed separately (``*_first_prediction_s``)."""
    port = free_port()
    env = app_env(Path(tempfile.mkdtemp()), GRADIO_SERVER_PORT=str(port))
    with served([str(ROOT / "app.py")], env, port=port, timeout_s=timeout_s) as app:
        return {"cold_start_s": app.page_s}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cnn", default="demo:demo-cnn")
    ap.add_argument("--baseline-cnn", help="a second CNN (registry key) whose Grad-CAM ratio is measured too")
    ap.add_argument("--vlm", default="demo:demo-vlm")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--no-cold-start", action="store_true")
    ap.add_argument("--json", help="write the figures here too")
    a = ap.parse_args(argv)

    out: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    }
    if not a.no_cold_start:
        out.update(cold_start())  # first, before this process warms the file cache for its own imports

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    out["machine"]["torch_threads"] = torch.get_num_threads()
    out["machine"]["torch"] = torch.__version__
    from histoapp.models.inference import classify_many, explain_many
    from histoapp.models.registry import ModelRegistry
    from histoapp.settings import Settings
    from histoapp.ui.examples import list_examples
    from trainer.data.images import load_rgb
    from trainer.explain import CAM_METHODS

    images = [load_rgb(e["path"]) for e in list_examples()]
    if not images:
        raise SystemExit("no example patches in assets/examples (python -m histoapp.ui.examples)")
    out["patch_size"] = list(images[0].size)
    reg = ModelRegistry(Settings(), device="cpu", hub_models=[])

    t0 = time.perf_counter()
    cnn = reg.load(a.cnn)
    classify_many(cnn, images[:1])
    out["cnn_first_prediction_s"] = time.perf_counter() - t0
    out["cnn"] = cnn_pair(a.cnn, cnn, images, a.runs)
    if a.baseline_cnn:
        out["cnn_baseline"] = cnn_pair(a.baseline_cnn, reg.load(a.baseline_cnn), images, a.runs)
    out["cnn"]["methods_ms"] = {
        m: bench_one(lambda im, m=m: explain_many(cnn, [im], method=m), images, max(3, a.runs // 4))
        for m in CAM_METHODS
    }
    out["cnn_variants"] = gradcam_variants(cnn, images, a.runs)

    try:
        t0 = time.perf_counter()
        vlm = reg.load(a.vlm)
        classify_many(vlm, images[:1])
        out["vlm_first_prediction_s"] = time.perf_counter() - t0
    except (KeyError, RuntimeError, FileNotFoundError) as exc:
        out["vlm"] = {"model": a.vlm, "error": f"not measured: {exc}"}
    else:
        plain, att = bench_pair(lambda im: classify_many(vlm, [im]), lambda im: explain_many(vlm, [im]), images, a.runs)
        answer = bench_one(lambda im: vlm.adapter.generate_answer(im), images, max(3, a.runs // 4))
        out["vlm"] = {
            "model": a.vlm,
            "plain_ms": plain,
            "attention_ms": att,
            "ratio_attention_plain": att / plain,
            "answer_ms": answer,
        }

    print(json.dumps(out, indent=1))
    print(markdown(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return out


def markdown(r: dict) -> str:
    c, v = r["cnn"], r["vlm"]
    rows = [
        "| | median ms / patch | ratio explained / plain |",
        "|---|---|---|",
        f"| CNN ({c['model']}, {c['input_size']} px) | {c['plain_ms']:.1f} | |",
        f"| CNN + Grad-CAM (target `{c['target']}`, {c['map']} map) | {c['gradcam_ms']:.1f} | "
        f"**{c['ratio_gradcam_plain']:.2f}x** (goal <= 1.5x) |",
    ]
    if "cnn_baseline" in r:
        b = r["cnn_baseline"]
        rows.append(
            f"| baseline: {b['model']} ({b['input_size']} px), plain -> Grad-CAM (target `{b['target']}`, {b['map']}"
            f" map) | {b['plain_ms']:.1f} -> {b['gradcam_ms']:.1f} | {b['ratio_gradcam_plain']:.2f}x |"
        )
    rows += [
        f"| CNN + {m} | {ms:.1f} | {ms / c['plain_ms']:.2f}x |" for m, ms in c["methods_ms"].items() if m != "Grad-CAM"
    ]
    rows += [
        f"| Grad-CAM variant: {x['what']} | {x['plain_ms']:.1f} -> {x['gradcam_ms']:.1f} | {x['ratio']:.2f}x |"
        for x in r.get("cnn_variants", [])
    ]
    if "error" in v:
        rows.append(f"| VLM ({v['model']}) | {v['error']} | |")
    else:
        rows += [
            f"| VLM ({v['model']}) | {v['plain_ms']:.1f} | |",
            f"| VLM + attention | {v['attention_ms']:.1f} | {v['ratio_attention_plain']:.2f}x |",
            f"| VLM free-text answer (separate) | {v['answer_ms']:.1f} | |",
        ]
    tail = []
    if "cold_start_s" in r:
        tail.append(f"Cold start (process start -> page served): **{r['cold_start_s']:.1f} s**.")
    tail.append(
        f"First prediction after start (model load + predict): CNN {r['cnn_first_prediction_s']:.1f} s"
        + (f", VLM {r['vlm_first_prediction_s']:.1f} s" if "vlm_first_prediction_s" in r else "")
        + "."
    )
    return "\n".join(rows) + "\n\n" + " ".join(tail)


if __name__ == "__main__":
    main()
