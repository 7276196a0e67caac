from histoapp.settings import Settings
from histoapp.ui.app import TABS, build_app


def test_app_builds_offline_with_all_tabs(tmp_path):
    demo = build_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    for name, _ in TABS:
        assert name in labels
    assert [n for n, _ in TABS] == ["Predict", "Annotate", "Train", "Dashboard", "About"]
