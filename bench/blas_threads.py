"""The model worker's BLAS / OpenMP threads (issue 30): what one classroom batch costs the worker, 16 patches through
the demo CNN with Grad-CAM and the demo VLM with attention (every trust check included: numpy's products in the
image checks and the OOD score), with numpy's BLAS at its default of one thread per core (the variables unset:
before) and at torch's thread count (``histoapp.models.worker_client.blas_threads_env``: what the worker starts with now).

Each setting runs in its own process (BLAS reads its thread count once, at import), alternating ``--runs`` times,
so a machine that gets busier slows both alike; per process the median over ``--batches`` batches of wall time and
of the process's CPU time (all its threads: a spinning BLAS thread counts).

    nice -n 10 uv run python bench/blas_threads.py --runs 3 --batches 5
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

from histoapp.models.worker_client import BLAS_THREAD_VARIABLES, blas_threads_env  # noqa: E402  (torch-free)

CHILD = """
import json, statistics, sys, time
from histoapp.models.inference import explain_many
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from histoapp.ui.examples import list_examples
from trainer.data.images import load_rgb

batches, size = int(sys.argv[1]), int(sys.argv[2])
reg = ModelRegistry(Settings(), device="cpu", hub_models=[])  # sets torch's threads (Settings.torch_threads)
cnn, vlm = reg.load("demo:demo-cnn"), reg.load("demo:demo-vlm")
examples = [load_rgb(e["path"]) for e in list_examples()]
patches = (examples * size)[:size]

def batch():
    explain_many(cnn, patches, method="Grad-CAM")
    explain_many(vlm, patches)

batch()  # first passes' one-time costs
wall, cpu = [], []
for _ in range(batches):
    t0, c0 = time.perf_counter(), time.process_time()
    batch()
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}))
"""


def run(env_vars: dict, batches: int, size: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES} | env_vars
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(batches), str(size)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="processes per setting, alternating")
    ap.add_argument("--batches", type=int, default=5, help="timed batches per process")
    ap.add_argument("--size", type=int, default=16, help="patches per batch (the app's HISTOAPP_PREDICT_BATCH)")
    a = ap.parse_args(argv)
    from histoapp.settings import Settings

    threads = Settings().torch_threads
    settings = {
        "their defaults (unset: one per core), before": {},
        f"torch's threads ({threads}), the worker now": blas_threads_env(threads),
    }
    got: dict[str, list[dict]] = {name: [] for name in settings}
    for r in range(a.runs):
        for name in list(settings)[r % 2 :] + list(settings)[: r % 2]:
            got[name].append(run(settings[name], a.batches, a.size))
            print(name, got[name][-1], flush=True)
    rows = {name: {k: statistics.median(x[k] for x in runs) for k in ("wall_s", "cpu_s")} for name, runs in got.items()}
    before, after = rows.values()
    result = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}, "batch": a.size, "rows": rows}
    print(json.dumps(result, indent=1))
    print(f"| BLAS / OpenMP threads | wall per batch of {a.size} | CPU per batch |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['wall_s'] * 1000:.0f} ms | {row['cpu_s'] * 1000:.0f} ms |")
    print(
        f"| **after / before** | **{after['wall_s'] / before['wall_s']:.2f}x** | "
        f"**{after['cpu_s'] / before['cpu_s']:.2f}x** |"
    )
    return result


if __name__ == "__main__":
    main()
