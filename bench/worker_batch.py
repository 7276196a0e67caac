"""What one classroom batch costs the model worker (issue 30): 16 patches through the demo CNN with Grad-CAM and the
demo VLM with attention, every trust check included (numpy's products in the image checks and the OOD score), new
pixels in every batch (as new uploads). Two settings compared, ``--compare``:

- ``blas``: numpy's BLAS / OpenMP at their defaults, one thread per core (the variables unset: before), and at
  torch's thread count (``trainer.threads.blas_threads_env``: what the worker starts with now);
- ``checks``: each model checking every patch itself (``trainer.trust.tissue`` remembering no checks: before), and
  the checks made once per patch (the last 64 remembered: now); BLAS at torch's threads in both.

Each setting runs in its own process (BLAS reads its thread count once, at import), alternating ``--runs`` times,
so a machine that gets busier slows both alike; per process the median over ``--batches`` batches of wall time and
of the process's CPU time (all its threads: a spinning BLAS thread counts).

    nice -n 10 uv run python bench/worker_batch.py --compare blas --runs 3 --batches 5
    nice -n 10 uv run python bench/worker_batch.py --compare checks --runs 3 --batches 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.threads import BLAS_THREAD_VARIABLES, blas_threads_env  # noqa: E402  (torch-free)

CHILD = """
import json, statistics, sys, time
import trainer.trust.tissue as tissue
from histoapp.models.inference import explain_many
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from histoapp.ui.examples import list_examples
from trainer.data.images import load_rgb

batches, size = int(sys.argv[1]), int(sys.argv[2])
if sys.argv[3] != "default":
    tissue._RECENT_SIZE = int(sys.argv[3])
reg = ModelRegistry(Settings(), device="cpu", hub_models=[])  # sets torch's threads (Settings.torch_threads)
cnn, vlm = reg.load("demo:demo-cnn"), reg.load("demo:demo-vlm")
examples = [load_rgb(e["path"]) for e in list_examples()]

def patches(k):  # new pixels in every batch: one pixel of each patch changed
    out = [im.copy() for im in (examples * size)[:size]]
    for i, im in enumerate(out):
        im.putpixel((k % im.width, i % im.height), (k % 256, 0, 0))
    return out

def batch(ims):
    explain_many(cnn, ims, method="Grad-CAM")
    explain_many(vlm, ims)

batch(patches(0))  # first passes' one-time costs
wall, cpu = [], []
for k in range(1, batches + 1):
    ims = patches(k)
    t0, c0 = time.perf_counter(), time.process_time()
    batch(ims)
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}))
"""


def run(setting: tuple[dict, str], batches: int, size: int) -> dict:
    env_vars, recent = setting
    env = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES} | env_vars
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(batches), str(size), recent],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", choices=["blas", "checks"], default="blas")
    ap.add_argument("--runs", type=int, default=3, help="processes per setting, alternating")
    ap.add_argument("--batches", type=int, default=5, help="timed batches per process")
    ap.add_argument("--size", type=int, default=16, help="patches per batch (the app's HISTOAPP_PREDICT_BATCH)")
    a = ap.parse_args(argv)
    from histoapp.settings import Settings

    threads = Settings().torch_threads
    ours = blas_threads_env(threads)
    settings = {
        "blas": {
            "BLAS threads at their defaults (unset: one per core), before": ({}, "default"),
            f"BLAS threads = torch's ({threads}), the worker now": (ours, "default"),
        },
        "checks": {
            "every model checks every patch, before": (ours, "0"),
            "checks made once per patch, now": (ours, "default"),
        },
    }[a.compare]
    got: dict[str, list[dict]] = {name: [] for name in settings}
    for r in range(a.runs):
        for name in list(settings)[r % 2 :] + list(settings)[: r % 2]:
            got[name].append(run(settings[name], a.batches, a.size))
            print(name, got[name][-1], flush=True)
    rows = {name: {k: statistics.median(x[k] for x in runs) for k in ("wall_s", "cpu_s")} for name, runs in got.items()}
    before, after = rows.values()
    result = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}, "batch": a.size, "rows": rows}
    result["compare"] = a.compare
    print(json.dumps(result, indent=1))
    print(f"| setting | wall per batch of {a.size} | CPU per batch |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['wall_s'] * 1000:.0f} ms | {row['cpu_s'] * 1000:.0f} ms |")
    print(
        f"| **after / before** | **{after['wall_s'] / before['wall_s']:.2f}x** | "
        f"**{after['cpu_s'] / before['cpu_s']:.2f}x** |"
    )
    return result


if __name__ == "__main__":
    main()
