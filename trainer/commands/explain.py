"""``python -m trainer explain-eval MODEL DATA``: how faithful, how sane and where each explanation method points,
per model, on a sample of a dataset (``trainer.explain.evaluate``); one table as markdown, JSON and CSV."""

from __future__ import annotations

import argparse

from trainer.threads import set_torch_threads


def register(sub: argparse._SubParsersAction) -> None:
    from trainer.explain.evaluate import ALL_METHODS

    p = sub.add_parser(
        "explain-eval",
        help="explanation methods per model: ROAD faithfulness, deletion / insertion, sanity check, pointing",
    )
    p.add_argument("model", help="checkpoint folder (or several, comma-separated: one table for all)")
    p.add_argument("data", nargs="+", help="dataset folder(s) (any source trainer evaluate reads)")
    p.add_argument(
        "--methods",
        help=f"comma-separated, from: {', '.join(ALL_METHODS)} (default: each model's own: its CAM methods or attention)",
    )
    p.add_argument("--limit", type=int, default=200, help="images sampled (default 200; 0: all)")
    p.add_argument("--patients", help="only these patients, comma-separated (e.g. held-out patients)")
    p.add_argument("--source", default="auto", help="dataset kind for the index (default: auto)")
    p.add_argument("--sanity-images", type=int, default=16, help="images for the sanity check (0: skip it)")
    p.add_argument("--sanity-layers", type=int, help="randomise only the top N layers (default: all listed)")
    p.add_argument("--mosaics", type=int, default=0, help="IDC mosaics for the pointing game (default 0: skip)")
    p.add_argument("--mosaic-side", type=int, default=3, help="patches per mosaic side (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="explain-eval", help="output folder (default ./explain-eval)")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", help="default: cuda when available, else cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_explain_eval)


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def cmd_explain_eval(args) -> int:
    import shlex
    import sys

    from trainer.explain.evaluate import explain_eval
    from trainer.explain.report import markdown, write_table

    set_torch_threads(args.threads)
    if args.limit < 0 or args.sanity_images < 0 or args.mosaics < 0 or args.mosaic_side < 2:
        raise ValueError("--limit, --sanity-images and --mosaics must be >= 0, --mosaic-side >= 2")
    table = explain_eval(
        _split(args.model),
        args.data,
        methods=_split(args.methods),
        limit=args.limit or None,
        patients=_split(args.patients),
        source=args.source,
        sanity_images=args.sanity_images,
        sanity_layers=args.sanity_layers,
        mosaics=args.mosaics,
        mosaic_side=args.mosaic_side,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    table["command"] = "python -m trainer " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["explain-eval"] else None
    paths = write_table(table, args.out)
    print(markdown(table))
    for s in table["skipped"]:
        print(f"skipped {s['model']} / {s['method']}: {s['why']}")
    print(f"{table['wall_seconds']:.0f} s; written to {paths['md']}, {paths['json'].name}, {paths['csv'].name}")
    return 0
