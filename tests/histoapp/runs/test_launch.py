"""The launch service behind the Train tab: structured errors and warnings, and nothing exported or written when
a check fails (no browser, no process)."""

from histoapp.runs import RunManager
from histoapp.runs.form import FIELDS, config_to_form
from histoapp.runs.launch import ANNOTATED_SOURCE, LaunchService
from tests.histoapp.runs.tiny import tiny_config


def _service(settings, store=None):
    def no_store():
        raise AssertionError("the store must not be touched")

    return LaunchService(RunManager(settings, background=False), settings, store or no_store)


def _form(settings, cfg, **changes):
    values = {**config_to_form(cfg, settings), **changes}
    return cfg.to_dict(), [values[k] for k in FIELDS]


def test_a_data_folder_the_launch_exports_need_not_exist_yet(run_settings, tiny_data):
    service = _service(run_settings)
    missing = str(run_settings.data_dir / "not-yet")
    base, values = _form(run_settings, tiny_config(run_settings, "a", tiny_data), **{"data.root": missing})
    plain = service.check(base, values)
    assert not plain.ok and any("does not exist" in e for e in plain.errors)
    base, values = _form(
        run_settings,
        tiny_config(run_settings, "a", tiny_data),
        **{"data.root": missing, "data.source": ANNOTATED_SOURCE},
    )
    annotated = service.check(base, values)
    assert annotated.ok and any("exported from the annotation store" in w for w in annotated.warnings)


def test_a_refused_launch_exports_nothing_and_lists_each_reason(run_settings, tiny_data):
    service = _service(run_settings)
    base, values = _form(
        run_settings,
        tiny_config(run_settings, "bad name!", tiny_data),
        **{"data.source": ANNOTATED_SOURCE, "train.epochs": 0},
    )
    report = service.launch(base, values)
    assert report.info is None and len(report.errors) == 2
    assert any("run name" in e for e in report.errors) and any("epochs" in e for e in report.errors)
    assert not run_settings.runs_dir.exists() or not any(run_settings.runs_dir.iterdir())


def test_bad_form_input_is_an_error_not_an_exception(run_settings, tiny_data):
    base, values = _form(run_settings, tiny_config(run_settings, "x", tiny_data), **{"overrides": "train.nope=1"})
    report = _service(run_settings).launch(base, values)
    assert not report.ok and "nope" in report.errors[0]
