"""Auto: Predict picks, for each image, the model whose training images it lies nearest (issue 25 item 5: one model
per domain, e.g. a CNN for IDC-like 50 px patches and one for BreakHis 100X fields, and the tab says which model
answered and why). Nearness is what ``histoapp.models.domain`` already warns about: another magnification tag,
another scale; among equals, a model trained at exactly the image's tag, then one whose domain is recorded, then
a demo model (curated), then the run fold with the best test ROC-AUC (its held-out figure).
Torch-free: it reads each checkpoint's ``engine.json`` only."""

from __future__ import annotations

from histoapp.models.domain import domain_of

AUTO = "auto"  # the model pickers' value for "pick per image"
AUTO_LABEL = "Auto: for each image, the model trained nearest it"


def _test_auc(entry) -> float:
    auc = (entry.info.get("metrics") or {}).get("roc_auc")
    return float(auc) if isinstance(auc, (int, float)) else float("-inf")


def candidates(registry, family: str) -> list:
    """The models Auto chooses among: the usable ones trained here (demo models and runs), not hub base models."""
    return [e for e in registry.list(family, include_hub=False) if e.available and e.source != "hub"]


def offered(registry, family: str) -> bool:
    """Auto is a choice only where there is one to make: two or more models trained here."""
    return len(candidates(registry, family)) >= 2


def pick(registry, family: str, size: tuple[int, int] | None, magnification: str | None) -> tuple[str | None, str]:
    """(key, why) of the model for an image of ``size`` (w, h) tagged ``magnification`` (or None)."""
    entries = candidates(registry, family)
    if not entries:
        return registry.default_key(family), "Auto: no model trained here; the default answered"
    domains = {e.key: domain_of(e) for e in entries}

    def rank(e):
        d = domains[e.key]
        return (
            len(d.warnings(size, magnification)),
            bool(magnification) and d.magnification != magnification,
            not (d.dataset or d.magnification or d.image_size),
            e.source != "demo",  # the curated model before a run of the same fit
            -_test_auc(e),
        )

    best = min(entries, key=rank)
    what = domains[best.key].describe().removeprefix("Trained on: ")
    seen = f"{size[0]}x{size[1]} px" if size else "size unknown"
    image = f"this image ({seen}, tagged {magnification})" if magnification else f"this image ({seen}, no tag)"
    if len(entries) == 1:
        return best.key, f"Auto: {best.name} is the only {family.upper()} trained here"
    if rank(best)[0]:
        return best.key, (
            f"Auto picked {best.name} (trained on {what}) as the nearest of {len(entries)} for {image}; none of them "
            "was trained on images like it (the warnings below say how it differs)"
        )
    return best.key, f"Auto picked {best.name} (trained on {what}) as the one of {len(entries)} that fits {image}"
