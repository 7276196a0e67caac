"""Generated test material for trainer.slide: an IDC-like patient folder (H&E-like patches named with their slide
coordinates, some places left empty, one short edge patch), its pyramidal TIFF mosaic, and the demo CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
DEMO_CNN = ROOT / "assets" / "models" / "demo-cnn"
# ../shared/data from the project root (a git worktree under /work/wt/<branch> finds it one folder further up)
SHARED = next(
    (p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").is_dir()), None
)
COLS, ROWS = 8, 6
PATIENT = "9999"
# Places with no patch (white in the mosaic: background tiles); the bottom row's patches are cut short by the
# slide's edge (IDC has such 50x42 ... 50x1 edge patches).
EMPTY = {(0, 0), (3, 2), (7, 5)}
SHORT = 42  # the bottom row's height


def patch_layout():
    """(col, row, x, y, width, height, label) of every generated patch; IDC coordinates start at 1, step 50."""
    out = []
    for row in range(ROWS):
        for col in range(COLS):
            if (col, row) in EMPTY:
                continue
            h = SHORT if row == ROWS - 1 else 50
            out.append((col, row, 1 + 50 * col, 51 + 50 * row, 50, h, int(col >= COLS // 2)))
    return out


@pytest.fixture(scope="session")
def patient_dir(tmp_path_factory) -> Path:
    """``<tmp>/9999/<0|1>/9999_idx5_x<X>_y<Y>_class<C>.png``: malignant-looking patches on the right half."""
    from trainer.data.synthetic import render_patch

    root = tmp_path_factory.mktemp("idc") / PATIENT
    rng = np.random.default_rng(0)
    for _col, _row, x, y, w, h, label in patch_layout():
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        im = render_patch(rng, 50, bool(label), 4, "40X").crop((0, 0, w, h))
        im.save(folder / f"{PATIENT}_idx5_x{x}_y{y}_class{label}.png")
    return root


@pytest.fixture(scope="session")
def mosaic(patient_dir, tmp_path_factory):
    """(tif, patches.csv) of ``patient_dir`` at 4 um/px."""
    from trainer.slide.mosaic import build_mosaic

    return build_mosaic(patient_dir, tmp_path_factory.mktemp("mosaic") / "9999.tif")


@pytest.fixture(scope="session")
def demo_cnn():
    from trainer.models import load_checkpoint

    return load_checkpoint(DEMO_CNN, device="cpu")


def write_tiff(path: Path, image: np.ndarray, mpp: float | None) -> Path:
    """A tiled pyramidal TIFF, with resolution tags when ``mpp`` is given (else none: no scale)."""
    if mpp is not None:
        from trainer.slide.mosaic import write_pyramid

        return write_pyramid(path, image, mpp)
    import tifffile

    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb", compression="zlib", metadata=None)
    return path
