"""The Annotate tab's adjudication with logins (issue 28, item 11): an annotator cannot settle a conflict they
voted on; a logged-in admin can, and the audit log says so."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gradio.context import LocalContext

from histoapp import auth
from histoapp.settings import Settings
from histoapp.store import open_store
from histoapp.ui.tabs import annotate as tab


@pytest.fixture
def ctx(tmp_path):
    from trainer.data.synthetic import generate

    users = tmp_path / "users.json"
    for name, role in (("ann", "annotator"), ("bea", "annotator"), ("cleo", "annotator"), ("boss", "admin")):
        auth.add_user(users, name, f"{name}-password", role)
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    root = generate(tmp_path / "p", patients_per_subtype=1, images_per_magnification=1, size=40, seed=2)
    ids = [store.add_image(p, dataset="breakhis") for p in sorted(root.rglob("*-40-*.png"))[:2]]
    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", users_file=users)
    yield SimpleNamespace(store=store, settings=settings, ids=ids)
    store.close()
    LocalContext.request.set(None)


def _adjudicate_as(ctx, user: str, image_id: int, label: int) -> str:
    request = SimpleNamespace(username=user)
    LocalContext.request.set(request)  # what Gradio sets for the role check
    return tab.adjudicate(ctx, image_id, label, "", "", "typed-name-ignored", request)[0]


def test_a_voter_is_refused_a_third_person_and_an_admin_are_not(ctx):
    first, second = ctx.ids
    for img in ctx.ids:
        ctx.store.annotate(img, "ann", label=1)
        ctx.store.annotate(img, "boss", label=0)
    assert "Not saved: ann labelled image" in _adjudicate_as(ctx, "ann", first, 1)
    assert _adjudicate_as(ctx, "cleo", first, 1) == f"Final label saved for image #{first}."
    assert _adjudicate_as(ctx, "boss", second, 0) == f"Final label saved for image #{second}."
    entry = ctx.store.audit_log(limit=1)[0]
    assert entry["actor"] == "boss" and entry["after"]["own_vote_override"] is True
