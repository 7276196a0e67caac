"""The Slide tab's zoomable viewer on a 1-gigapixel slide in real Chromium (issue 26: "the viewer stays responsive
(pan/zoom) in real Chromium on a 1-gigapixel slide"), against a small slide measured in the same run.

    nice -n 5 uv run python bench/slide_viewer.py                   # 32,000 x 32,000 px vs 2,000 x 2,000 px
    uv run python bench/slide_viewer.py --big-tiles 2500            # quick: 10,000 x 10,000 px

Both slides are pyramidal TIFFs built by ``bench/slide_throughput.py``'s builder in a child process (real IDC
patches from ../shared/data/idc laid edge to edge at 4 um/px as the reduced level, level 0 at 1 um/px written tile
by tile; generated H&E-like patches when the data is absent), in a temporary folder deleted at the end. The app is
built and served in this process as the browser tests do (tests/ui/conftest.py), with a users file; Chromium
(Playwright, /usr/bin/chromium) logs in as an annotator and opens the Slide tab. Each slide is registered in the
app's ``ctx.slides`` for that user in-process (no upload: a copy of a gigabyte through the browser is not what is
measured), and the tab's own viewer script (``histoapp.ui.slide_view.VIEWER_JS``) is run on the tab's viewer box
with that slide's settings: OpenSeadragon loads the slide's DZI and its tiles from the app's routes, with the
role check on every request.

The steps, driven through OpenSeadragon's API (``viewport.panTo`` / ``zoomTo``, immediately): at each of a few
places, from the whole slide to full resolution (one image px per screen px) in ``--steps`` zooms evenly spaced
in log scale. Measured in the page: the time from each step to the view being fully loaded
(``TiledImage.getFullyLoaded`` after OpenSeadragon's next frames), the tiles loaded per step, each tile request's
latency (Resource Timing: time to first byte, i.e. the server's work plus its queue, and the whole request), the
longest frame and the long tasks (> 50 ms) while stepping, the page's JS heap (CDP ``Performance.getMetrics``);
outside it, the peak resident memory of Chromium's processes and of this process (the server) while stepping.
The goal: the gigapixel slide's steps about as fast as the small one's (ratio near 1), since each tile is read
from the pyramid on request and never the whole slide."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve import percentile  # noqa: E402  (bench/serve.py, beside this script)

CHROMIUM = os.environ.get("HISTOAPP_CHROMIUM", "/usr/bin/chromium")
USER, PASSWORD = "bench", "bench-viewer-pass"
PLACES = ((0.5, 0.5), (0.23, 0.31), (0.77, 0.68))  # where to zoom in, as fractions of the slide's width / height
STEP_TIMEOUT_MS = 30_000

# In the page: a step (pan + zoom, immediately) and the wait for the view to be fully loaded.
STEP_JS = r"""
async ([fx, fy, zoomFactor, timeoutMs]) => {
  const v = document.querySelector('#slide-viewer')._osd;
  const item = v.world.getItemAt(0);
  const size = item.getContentSize();
  const home = v.viewport.getHomeZoom(), full = item.imageToViewportZoom(1);
  const zoom = home * Math.pow(full / home, zoomFactor);
  const frame = () => new Promise((ok) => requestAnimationFrame(() => ok()));
  let tiles = 0;
  const onTile = () => { tiles += 1; };
  v.addHandler('tile-loaded', onTile);
  const t0 = performance.now();
  v.viewport.panTo(item.imageToViewportCoordinates(fx * size.x, fy * size.y), true);
  v.viewport.zoomTo(zoom, null, true);
  await frame(); await frame();  // OpenSeadragon's update ran: it knows which tiles the new view needs
  let timedOut = false;
  while (!item.getFullyLoaded()) {
    if (performance.now() - t0 > timeoutMs) { timedOut = true; break; }
    await frame();
  }
  const ms = performance.now() - t0;
  v.removeHandler('tile-loaded', onTile);
  return {ms, tiles, timedOut, zoom: zoom / full};
}
"""

# In the page: frames and long tasks, recorded from now on.
WATCH_JS = r"""
() => {
  performance.setResourceTimingBufferSize(1000000);
  performance.clearResourceTimings();
  const w = window.__bench = {longTasks: [], maxFrame: 0, frames: 0, on: true};
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) w.longTasks.push(e.duration); })
      .observe({type: 'longtask'});
  } catch (e) { w.longTasks = null; }
  let last = performance.now();
  const tick = (t) => { if (!w.on) return; w.maxFrame = Math.max(w.maxFrame, t - last); w.frames += 1; last = t;
    requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}
"""

TIMINGS_JS = r"""
(prefix) => performance.getEntriesByType('resource').filter((e) => e.name.includes(prefix)).map((e) => ({
  url: e.name, ttfb: e.responseStart > 0 ? e.responseStart - e.requestStart : null,
  total: e.responseEnd - e.startTime, cached: e.transferSize === 0 && e.decodedBodySize > 0}))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(path: Path, tiles: int, timeout_s: int) -> Path:
    """A pyramidal TIFF by bench/slide_throughput.py's builder, in a child process (this one stays the server)."""
    cmd = [sys.executable, str(ROOT / "bench" / "slide_throughput.py"), "--build-only", str(path)]
    t0 = time.perf_counter()
    try:
        subprocess.run([*cmd, "--tiles", str(tiles), "--level0-mpp", "1"], check=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        sys.exit(f"building {path.name} took over {timeout_s} s: try fewer --big-tiles or a quieter machine")
    log(f"built {path.name}: {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t0:.0f} s")
    return path


class Peaks:
    """Peak resident memory of this process (the server) and of the Chromium processes it started, sampled."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self._psutil, self.interval = psutil, interval
        self.me = psutil.Process()
        self.server = self.browser = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def browser_rss(self) -> int:
        total = 0
        for p in self.me.children(recursive=True):
            try:
                if "chrom" in p.name().lower():
                    total += p.memory_info().rss
            except self._psutil.Error:
                continue
        return total

    def reset(self) -> None:
        self.server, self.browser = self.me.memory_info().rss, self.browser_rss()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.server = max(self.server, self.me.memory_info().rss)
            self.browser = max(self.browser, self.browser_rss())

    def __enter__(self) -> Peaks:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def register(ctx, path: Path):
    """The slide opened by ``trainer.slide`` and kept in the app's ``ctx.slides`` for the bench's user, as the
    Slide tab's ``analyze`` does after an upload (without the copy: the bench slide is removed by the bench)."""
    from histoapp.models.slides import SlideSession, new_id
    from trainer.slide import open_slide

    session = SlideSession(id=new_id(), name=path.name, path=path, owner=USER, slide=open_slide(path))
    ctx.slides.add(session)
    return session


def measure(page, cdp, peaks: Peaks, session, steps: int, drawer: str | None = None) -> dict:
    """Open ``session`` in the tab's viewer and run the steps; the figures of this slide. ``drawer``: another
    OpenSeadragon drawer than the app's (to compare)."""
    from histoapp.ui import slide_view as sv

    cfg = sv.viewer_value(session.id, [], 0.5)
    js = sv.VIEWER_JS
    if drawer:
        if "drawer: 'canvas'," not in js:
            sys.exit("--drawer: the app's viewer script no longer names its drawer as this bench expects")
        js = js.replace("drawer: 'canvas',", f"drawer: {json.dumps(drawer)},")
    cdp.send("Network.clearBrowserCache")  # each slide's tiles come from the server, in every round
    page.evaluate(WATCH_JS)
    page.evaluate(  # a new viewer (with an empty tile cache) for each slide and round
        "([js, cfg]) => { const el = document.querySelector('#slide-viewer');"
        " if (el._osd) { el._osd.destroy(); el._osd = null; }"
        " new Function('element', 'props', 'watch', js)(el, {value: cfg}, () => {}); }",
        [js, cfg],
    )
    t0 = time.perf_counter()
    page.wait_for_function(
        "() => { const v = document.querySelector('#slide-viewer')._osd;"
        " return v && v.world.getItemCount() > 0 && v.world.getItemAt(0).getFullyLoaded(); }",
        timeout=60_000,
    )
    opened_s = time.perf_counter() - t0
    peaks.reset()
    records = []
    for fx, fy in PLACES:
        for k in range(steps + 1):  # k = 0: the whole slide, at this place
            r = page.evaluate(STEP_JS, [fx, fy, k / steps, STEP_TIMEOUT_MS])
            if r["timedOut"]:
                log(f"  step {k} at ({fx}, {fy}) not fully loaded after {STEP_TIMEOUT_MS / 1000:.0f} s")
            records.append(r)
    bench = page.evaluate("() => { const w = window.__bench; w.on = false; return w; }")
    heap = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    timings = page.evaluate(TIMINGS_JS, f"/slide/{session.id}/image_files/")
    fetched = [t for t in timings if not t["cached"]]
    ttfb = [t["ttfb"] for t in fetched if t["ttfb"] is not None]
    by_level: dict[int, list[float]] = {}
    for t in fetched:
        if t["ttfb"] is not None:
            by_level.setdefault(int(t["url"].split("/image_files/")[1].split("/")[0]), []).append(t["ttfb"])
    ms = [r["ms"] for r in records]
    loading = [r["ms"] for r in records if r["tiles"]]  # the steps that needed new tiles (others are instant)
    w, h = session.slide.dimensions
    return {
        "slide": f"{w} x {h} px ({w * h / 1e9:.2f} gigapixel), {session.slide.level_count} TIFF levels",
        "dzi_levels": session.deepzoom().level_count,
        "open_s": round(opened_s, 2),
        "steps": len(records),
        "step_ms_median": round(statistics.median(ms), 1),
        "step_ms_p95": round(percentile(ms, 0.95), 1),
        "step_ms_max": round(max(ms), 1),
        "steps_timed_out": sum(r["timedOut"] for r in records),
        "steps_loading_tiles": len(loading),
        "loading_step_ms_median": round(statistics.median(loading), 1) if loading else None,
        "loading_step_ms_p95": round(percentile(loading, 0.95), 1) if loading else None,
        "ms_per_tile_loaded": round(sum(loading) / max(1, sum(r["tiles"] for r in records)), 1),
        "tiles_loaded": sum(r["tiles"] for r in records),
        "tile_requests": len(fetched),
        "tile_ttfb_ms_median": round(statistics.median(ttfb), 1) if ttfb else None,
        "tile_ttfb_ms_p95": round(percentile(ttfb, 0.95), 1) if ttfb else None,
        "tile_total_ms_median": round(statistics.median([t["total"] for t in fetched]), 1) if fetched else None,
        "tile_ttfb_ms_median_by_dzi_level": {k: round(statistics.median(v), 1) for k, v in sorted(by_level.items())},
        "longest_frame_ms": round(bench["maxFrame"], 1),
        "long_tasks": None if bench["longTasks"] is None else len(bench["longTasks"]),
        "long_task_ms_max": round(max(bench["longTasks"] or [0]), 1),
        "js_heap_used_mib": round(heap.get("JSHeapUsedSize", 0) / 2**20, 1),
        "browser_peak_rss_mib": round(peaks.browser / 2**20),
        "server_peak_rss_mib": round(peaks.server / 2**20),
    }


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        return next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except Exception:
        return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big-tiles", type=int, default=25_600, help="IDC-scale tiles of the big slide (25,600: 32k px)")
    ap.add_argument("--small-tiles", type=int, default=100, help="of the small slide (100: 2,000 x 2,000 px)")
    ap.add_argument("--steps", type=int, default=20, help="zoom steps from the whole slide to full resolution")
    ap.add_argument("--rounds", type=int, default=1, help="2: small, big, big, small (ABBA); medians reported")
    ap.add_argument("--build-timeout", type=int, default=1800, help="seconds allowed to build each slide")
    ap.add_argument("--drawer", choices=("webgl", "canvas"), help="OpenSeadragon's drawer (default: the app's)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set HISTOAPP_CHROMIUM)")

    from playwright.sync_api import sync_playwright

    from histoapp import auth
    from histoapp.settings import Settings
    from histoapp.ui.app import build as build_app
    from histoapp.ui.app import login_options

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed (e.g. by timeout): the slides still deleted
    tmp = Path(tempfile.mkdtemp(prefix="slide-viewer-bench-"))
    demo = None
    try:
        small = build(tmp / "small.tif", args.small_tiles, args.build_timeout)
        big = build(tmp / "big.tif", args.big_tiles, args.build_timeout)
        users = tmp / "users.json"
        auth.add_user(users, USER, PASSWORD, "annotator")
        settings = Settings(runs_dir=tmp / "runs", data_dir=tmp / "data", users_file=users)
        demo, ctx = build_app(settings)
        demo.queue()
        options = login_options(settings)
        demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, **options)
        url = demo.local_url.rstrip("/")
        log(f"app at {url}")
        sessions = {"small": register(ctx, small), "big": register(ctx, big)}
        results: dict[str, list[dict]] = {"small": [], "big": []}
        with sync_playwright() as p, Peaks() as peaks:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(url)
            page.get_by_label("username").fill(USER)
            page.get_by_label("password").fill(PASSWORD)
            page.get_by_role("button", name="Login").click()
            page.locator("#who").filter(has_text=f"Logged in as {USER}").wait_for()
            page.get_by_role("tab", name="Slide").click()
            page.locator("#slide-viewer .slide-osd").wait_for(state="visible")
            for r in range(args.rounds):
                for which in ("small", "big") if r % 2 == 0 else ("big", "small"):
                    log(f"round {r + 1}: {which} slide")
                    out = measure(page, cdp, peaks, sessions[which], args.steps, args.drawer)
                    log(json.dumps(out))
                    results[which].append(out)
            browser.close()

        def med(which: str, key: str) -> float | None:
            values = [x[key] for x in results[which] if x[key] is not None]
            return statistics.median(values) if values else None

        keys = (
            "step_ms_median",
            "step_ms_p95",
            "loading_step_ms_median",
            "loading_step_ms_p95",
            "ms_per_tile_loaded",
            "tile_ttfb_ms_median",
            "tile_ttfb_ms_p95",
            "tile_total_ms_median",
        )
        ratios = {k: round(med("big", k) / med("small", k), 2) for k in keys if med("small", k) and med("big", k)}
        summary = {
            "cpu": cpu_name(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "chromium": CHROMIUM,
            "steps_per_place": args.steps,
            "places": len(PLACES),
            "rounds": args.rounds,
            "small": results["small"],
            "big": results["big"],
            "ratio_big_over_small": ratios,
        }
        print(json.dumps(summary, indent=1))
        print(
            f"big / small: step to fully loaded, median {ratios.get('step_ms_median')}x, p95 {ratios.get('step_ms_p95')}x"
            f" (the big slide's 61x zoom range needs more tiles); steps that loaded tiles, median"
            f" {ratios.get('loading_step_ms_median')}x; per tile loaded {ratios.get('ms_per_tile_loaded')}x;"
            f" tile time to first byte, median {ratios.get('tile_ttfb_ms_median')}x, p95 {ratios.get('tile_ttfb_ms_p95')}x"
            " (goal: about 1)"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=1))
    finally:
        if demo is not None:
            demo.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
