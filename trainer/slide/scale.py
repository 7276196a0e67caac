"""What one model input covers on the slide (the model's scale) and how a slide is tiled to match it.

A model learned its classes at one scale: IDC patches are 50 px at about 4 um/px (200 um squares), BreakHis
fields 700x460 px at 0.49 um/px at 40X. A slide is tiled so that each tile covers what one training image covered,
then resized to the training image's size, whatever the slide's own scale.

Where the scale comes from, first found wins:
1. the model's metadata (``engine.json``): ``mpp`` (um per pixel of the training images) and ``patch_px`` (their
   side; or ``patch_um``), which ``trainer export`` writes (``scale_meta``);
2. the documented default of its data source (``DEFAULTS``), with the training images' side from ``image_size``:
   - ``idc``: 4.0 um/px, 50 px. ``../shared/data/idc/SOURCE.md`` ("Scale"): the patches were cut from a reduced
     copy of 40x scans; one patient's patches rebuild a whole section of about 15 x 11 mm in 3,651 x 2,701 px, which
     fits about 4 um/px (2.5x, a 16:1 reduction of 40x: Cruz-Roa et al., SPIE Medical Imaging 2014,
     doi:10.1117/12.2043872). An estimate, not a calibrated figure.
   - ``breakhis``: 0.49 um/px at 40X, and 40/magnification times that at the others (0.196 at 100X, 0.098 at 200X,
     0.049 at 400X). Spanhol et al., IEEE TBME 2016 (doi:10.1109/TBME.2015.2496264): an Olympus BX-50 with a 3.3x
     relay lens onto a camera of 6.5 um pixels, objectives 4x / 10x / 20x / 40x for 40X / 100X / 200X / 400X, so
     6.5 / (3.3 x 4) = 0.49 um per pixel at 40X. The fields' side used is the shorter (460 px): the model's
     transform centre-crops them square.
3. else ``SlideError``: the model does not say what its input covers (e.g. generated data)."""

from __future__ import annotations

from dataclasses import dataclass

from trainer.slide.reader import SlideError

IDC_MPP = 4.0
IDC_PATCH_PX = 50
BREAKHIS_MPP_40X = 0.49


@dataclass(frozen=True)
class ModelScale:
    """One model input as the training images saw it: ``patch_px`` pixels at ``mpp`` um per pixel."""

    mpp: float
    patch_px: int
    source: str  # "model metadata" or "default for <dataset>"

    @property
    def patch_um(self) -> float:
        return self.mpp * self.patch_px

    def to_dict(self) -> dict:
        return {"mpp": self.mpp, "patch_px": self.patch_px, "patch_um": self.patch_um, "source": self.source}


def _meta(model) -> dict:
    return dict(model if isinstance(model, dict) else (getattr(model, "meta", None) or {}))


def _side(meta: dict, default: int) -> int:
    size = meta.get("image_size")
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in size):
        return int(min(size))
    return default


def default_scale(meta: dict) -> ModelScale | None:
    """The documented default scale of the model's data source (``DEFAULTS`` in the module docs), or None."""
    dataset = str(meta.get("dataset") or "").lower()
    if dataset == "idc":
        return ModelScale(IDC_MPP, _side(meta, IDC_PATCH_PX), "default for idc (../shared/data/idc/SOURCE.md)")
    if dataset == "breakhis":
        mag = str(meta.get("magnification") or "").upper().rstrip("X")
        if mag.isdigit() and int(mag) > 0:
            mpp = BREAKHIS_MPP_40X * 40.0 / int(mag)
            return ModelScale(mpp, _side(meta, 460), f"default for breakhis at {mag}X (Spanhol et al. 2016)")
    return None


def model_scale(model) -> ModelScale:
    """The scale of ``model`` (a ``Checkpoint``, the app's loaded model, or its ``engine.json`` dict)."""
    meta = _meta(model)
    mpp = meta.get("mpp")
    if isinstance(mpp, (int, float)) and mpp > 0:
        px = meta.get("patch_px")
        if not (isinstance(px, (int, float)) and px > 0) and isinstance(meta.get("patch_um"), (int, float)):
            px = meta["patch_um"] / mpp
        if isinstance(px, (int, float)) and px > 0:
            return ModelScale(float(mpp), round(px), "model metadata")
    found = default_scale(meta)
    if found is None:
        raise SlideError(
            "the model does not say what its input covers (no mpp / patch_px in its engine.json, and no default for "
            f"dataset {meta.get('dataset')!r} at {meta.get('magnification')!r}): it cannot be matched to a slide"
        )
    return found


def model_mpp(model) -> float:
    """Micrometres per pixel of the model's training images (``model_scale``)."""
    return model_scale(model).mpp


def scale_meta(meta: dict) -> dict:
    """The ``mpp`` / ``patch_px`` / ``patch_um`` fields for an exported model's ``engine.json`` (empty when its
    scale is unknown): written once, so a card states what one input covers."""
    try:
        s = model_scale(meta)
    except SlideError:
        return {}
    return {"mpp": round(s.mpp, 6), "patch_px": s.patch_px, "patch_um": round(s.patch_um, 3)}
