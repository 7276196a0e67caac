"""``python -m trainer slide MODEL SLIDE... --out DIR``: whole slides and large fields scored tile by tile at the
model's scale (``trainer.slide``), and ``python -m trainer slide-mosaic PATIENT_DIR OUT.tif``: an IDC patient's
patches rebuilt as a pyramidal TIFF (test material with a per-tile ground truth). docs/slide.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SUMMARY_FILE = "summary.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "slide",
        help="score whole slides / large images tile by tile at the model's scale: tile table, heat map, GeoJSON",
        description="Writes, per slide, OUT/<slide name>/: tiles.csv, heatmap.png, thumbnail.png, regions.geojson, "
        "summary.json. A re-run with the same --out continues a slide that was stopped.",
    )
    p.add_argument("model", help="a model folder (assets/models/demo-cnn, a run's fold<k>/best, an exported model)")
    p.add_argument("slides", nargs="+", metavar="SLIDE", help="SVS / NDPI / pyramidal TIFF / ... or PNG / JPEG / TIFF")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per slide)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--mpp", type=float, help="micrometres per level-0 pixel (overrides the slide's metadata)")
    scale.add_argument("--magnification", help="the slide's magnification, e.g. 40X (0.25 um/px), when it has no mpp")
    p.add_argument("--overlap", type=float, default=0.0, help="share of a tile its neighbours overlap (default 0)")
    p.add_argument("--context", action="store_true", help="map each tile's 3x3 mean P(malignant) (trainer context)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threshold", type=float, default=0.5, help="P(malignant) from which a tile joins a GeoJSON region")
    p.add_argument("--thumbnail", type=int, default=1024, help="longer side of thumbnail.png and heatmap.png (px)")
    p.add_argument("--opacity", type=float, default=0.5, help="heat map opacity over the thumbnail (0-1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_slide)

    m = sub.add_parser(
        "slide-mosaic",
        help="rebuild an IDC patient's slide from its patches as a pyramidal TIFF (+ <name>.patches.csv)",
    )
    m.add_argument("patient_dir", help="one IDC patient's folder, e.g. ../shared/data/idc/8914")
    m.add_argument("out", help="the .tif to write")
    m.add_argument("--mpp", type=float, default=None, help="um per pixel written in its resolution tags (default 4)")
    m.set_defaults(func=cmd_mosaic)


def _out_names(slides: list[str]) -> list[str]:
    """One output folder name per slide: its file stem, numbered when two slides share one."""
    names, seen = [], {}
    for s in slides:
        stem = Path(s).stem or "slide"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def cmd_slide(args) -> int:
    from trainer.models import load_checkpoint
    from trainer.slide import SlideError, open_slide, score_slide

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    model = load_checkpoint(args.model, device=args.device)
    out_root = Path(args.out)
    failed = 0
    for path, name in zip(args.slides, _out_names(args.slides), strict=True):
        out_dir = out_root / name
        bar = None if args.no_progress else _Bar(name)
        try:
            with open_slide(path, mpp=args.mpp, magnification=args.magnification) as slide:
                result = score_slide(
                    model,
                    slide,
                    overlap=args.overlap,
                    batch_size=args.batch_size,
                    context=args.context,
                    progress=bar,
                    out_dir=out_dir,
                )
                thumb = slide.thumbnail(args.thumbnail)
                thumb.save(out_dir / "thumbnail.png")
                result.heatmap_png(out_dir / "heatmap.png", thumb, args.opacity)
            result.to_csv(out_dir / "tiles.csv")
            result.to_geojson(out_dir / "regions.geojson", args.threshold)
            summary = {**result.summary, "notes": result.notes, "threshold": args.threshold}
            (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
        except SlideError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        finally:
            if bar is not None:
                bar.close()
        s = result.summary
        share = "—" if s["share_malignant"] is None else f"{s['share_malignant']:.1%}"
        print(
            f"{path}: {s['tiles']} tiles ({s['tissue_tiles']} tissue, {s['background_tiles']} background), "
            f"{s['tissue_area_mm2']:.2f} mm2 of tissue, {share} predicted malignant, {s['abstained']} abstained, "
            f"{s['ood']} OOD; {s['seconds']:.1f} s -> {out_dir}"
        )
        for note in result.notes:
            print(f"  note: {note}")
    return 1 if failed else 0


class _Bar:
    """A tqdm bar fed by ``score_slide``'s ``progress(done, total)``."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.name, unit="tile", file=sys.stderr, dynamic_ncols=True)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_mosaic(args) -> int:
    from trainer.slide.mosaic import build_mosaic
    from trainer.slide.scale import IDC_MPP

    tif, table = build_mosaic(args.patient_dir, args.out, mpp=args.mpp or IDC_MPP)
    print(f"written {tif} and {table}")
    return 0
