"""Sending patches to the annotation queue (``histoapp.store``), one way for every tab: the Predict tab's
disagreements and the Slide tab's most uncertain tiles. Each patch is a kept image file with the models'
predictions about it; a failing store is said in the returned line, and what was sent before it stays sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from histoapp.auth import who


@dataclass
class QueuedPatch:
    """One image file for the queue and what the models said: (kind "cnn" / "vlm", model key, P(malignant),
    label) each."""

    name: str
    path: str
    magnification: str | None = None
    predictions: list[tuple[str, str, float, str | None]] = field(default_factory=list)


def send_patches(ctx, patches: list[QueuedPatch], kept_in: Path, dataset: str = "uploads") -> str:
    """Add each patch to the store (the same bytes are not queued twice) with its predictions; one line saying
    what was sent, or why not (``kept_in``: where the files stay when the store is down)."""
    try:
        store = ctx.store
    except Exception as exc:
        return (
            f"⚠️ The annotation store is unavailable ({exc.__class__.__name__}: {exc}); nothing was sent. "
            f"Your uploads are kept in `{kept_in}`."
        )
    sent, actor = [], who(ctx.settings)
    try:
        for patch in patches:
            image_id = store.add_image(patch.path, dataset=dataset, magnification=patch.magnification, actor=actor)
            for kind, key, prob, label in patch.predictions:
                store.add_prediction(
                    image_id, model=key, prob_malignant=float(prob), label=label, kind=kind, actor=actor
                )
            sent.append(patch.name)
    except Exception as exc:
        return f"⚠️ Sending failed after {len(sent)} patch(es) ({exc.__class__.__name__}: {exc})."
    return f"✅ Sent {len(sent)} patch(es) to the annotation queue: {', '.join(sent)}."
