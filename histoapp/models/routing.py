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


def candidates(entries) -> list:
    """Of a family's registry entries, the ones Auto chooses among: usable and trained here (demo models and runs),
    not hub base models."""
    return [e for e in entries if e.available and e.source != "hub"]


def offered(entries) -> bool:
    """Auto is a choice only where there is one to make: two or more models trained here."""
    return len(candidates(entries)) >= 2


class Router:
    """One family's candidates and their domains, read once (a batch's images are then picked without listing the
    run folders again)."""

    def __init__(self, registry, family: str):
        self.family = family
        self.entries = candidates(registry.list(family, include_hub=False))
        self.default = None if self.entries else registry.default_key(family)
        self.domains = {e.key: domain_of(e) for e in self.entries}

    def _rank(self, e, size, magnification) -> tuple:
        d = self.domains[e.key]
        return (
            len(d.warnings(size, magnification)),
            bool(magnification) and d.magnification != magnification,
            not (d.dataset or d.magnification or d.image_size),
            e.source != "demo",  # the curated model before a run of the same fit
            -_test_auc(e),
        )

    def pick(self, size: tuple[int, int] | None, magnification: str | None) -> tuple[str | None, str]:
        """(key, why) of the model for an image of ``size`` (w, h) tagged ``magnification`` (or None)."""
        if not self.entries:
            return self.default, "Auto: no model trained here; the default answered"
        misfits, best = min(((self._rank(e, size, magnification), e) for e in self.entries), key=lambda r: r[0])
        what = self.domains[best.key].describe().removeprefix("Trained on: ")
        seen = f"{size[0]}x{size[1]} px" if size else "size unknown"
        image = f"this image ({seen}, tagged {magnification})" if magnification else f"this image ({seen}, no tag)"
        n = len(self.entries)
        if n == 1:
            return best.key, f"Auto: {best.name} is the only {self.family.upper()} trained here"
        if misfits[0]:
            return best.key, (
                f"Auto picked {best.name} (trained on {what}) as the nearest of {n} for {image}; none of them was "
                "trained on images like it (the warnings below say how it differs)"
            )
        return best.key, f"Auto picked {best.name} (trained on {what}) as the one of {n} that fits {image}"
