"""The "Use via API" page's content (issue 23): every endpoint's parameters named and described, no raw markup,
and a real return type (Gradio showed "1st", "The input value that is provided in the '1st' Api component" and
``Any`` for every return)."""

from histoapp.models.uploads import MAX_BATCH
from histoapp.settings import Settings
from histoapp.ui.app import build_app


def test_every_endpoint_has_named_described_parameters_and_typed_returns(tmp_path):
    info = build_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")).get_api_info()
    endpoints = info["named_endpoints"]
    assert {"/predict", "/predict_batch", "/models", "/annotate_label", "/launch_run"} <= set(endpoints)
    for name, endpoint in endpoints.items():
        assert endpoint["description"] and "``" not in endpoint["description"], name
        for param in endpoint["parameters"]:
            assert param["label"] == param["parameter_name"], (name, param["label"])
            assert param["python_type"]["description"], (name, param["parameter_name"])
            assert "``" not in param["python_type"]["description"], (name, param["parameter_name"])
        for ret in endpoint["returns"]:
            assert ret["python_type"]["type"] != "Any", name
    assert str(MAX_BATCH) in endpoints["/predict_batch"]["description"]
    answer = endpoints["/predict"]["returns"][0]["python_type"]["type"]
    assert "label: None | str" in answer and "trained_on: str" in answer and "agree: None | bool" in answer
