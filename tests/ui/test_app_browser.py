import pytest

from histoapp.settings import Settings

pytestmark = pytest.mark.browser


def test_shell_shows_every_tab_in_a_real_browser(serve_app, page, tmp_path):
    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    page.goto(url)
    for name in ("Predict", "Slide", "Annotate", "Train", "Dashboard", "About"):
        page.get_by_role("tab", name=name).wait_for()
    page.get_by_role("tab", name="About").click()
    page.get_by_text("not diagnostic devices").wait_for()
