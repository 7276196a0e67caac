"""The app's API through ``gradio_client``: the README's example, run against the served app."""

import re
from pathlib import Path

import pytest

from histoapp.settings import Settings
from histoapp.ui.examples import list_examples

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    """The README's ``gradio_client`` code block, as documented."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(from gradio_client import.*?)```", text, re.S)
    assert block, "README has no gradio_client example"
    return block.group(1)


def test_readme_example_predicts_one_patch_with_both_models(serve_app, tmp_path):
    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    patch = list_examples()[0]["path"]
    code = _readme_example().replace("http://127.0.0.1:7860/", url).replace("patch.png", str(patch))
    scope: dict = {}
    exec(compile(code, "README example", "exec"), scope)
    result = scope["result"]
    for side in ("cnn", "vlm"):
        pred = result[side]
        assert pred["label"] in ("benign", "malignant")
        assert 0.0 <= pred["prob_malignant"] <= 1.0
        assert abs(sum(pred["probs"].values()) - 1.0) < 1e-4


@pytest.mark.slow
def test_readme_example_through_the_model_worker_as_app_py_serves_it(tmp_path):
    """As ``app.py``: the models in the worker process (started before the app is built), asked during its
    warm-up; the answer waits for it, and the worker stops with the app."""
    from histoapp.models.worker_client import ModelWorker
    from histoapp.ui.app import build

    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", hub_models=[])
    worker = ModelWorker(settings).start()
    demo, ctx = build(settings, warm=True, worker=worker)
    demo.queue()
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        code = _readme_example().replace("http://127.0.0.1:7860/", demo.local_url)
        scope: dict = {}
        exec(compile(code.replace("patch.png", str(list_examples()[0]["path"])), "README example", "exec"), scope)
        assert {scope["result"][side]["label"] for side in ("cnn", "vlm")} <= {"benign", "malignant"}
        assert ctx.warmup is worker
        assert worker.wait(300) and worker.state == "ready"  # an answer may come before the warm-up's own passes end
    finally:
        demo.close()
        ctx.models.close()
    assert worker.pid is None and worker.exit_codes == []


def test_concurrent_explained_predictions_share_forward_passes(serve_app, tmp_path):
    """Eight callers at once, CNN + Grad-CAM + VLM + attention (batched together by the app): every answer has
    its maps, and a patch gets the same answer in whatever batch it ran as alone."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    examples = [e["path"] for e in list_examples()]
    clients = [Client(url, verbose=False) for _ in range(8)]
    single = clients[0].predict(handle_file(examples[0]), explain=True, api_name="/predict")
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda k: clients[k].predict(
                    handle_file(examples[k % len(examples)]), explain=True, api_name="/predict"
                ),
                range(8),
            )
        )
    for result in [single, *results]:
        for side in ("cnn", "vlm"):
            assert result[side] is not None, result  # the whole answer, to say why (an upload's error ...)
            heat = result[side]["heatmap"]
            assert result[side]["explanation"] and len(heat) <= 32 and len(heat[0]) <= 32
            assert all(0.0 <= v <= 1.0 for row in heat for v in row)
    again = results[0]  # example 0 again, in whatever batch it ran: the same answer as alone
    assert abs(again["cnn"]["prob_malignant"] - single["cnn"]["prob_malignant"]) < 1e-4
    assert abs(again["vlm"]["prob_malignant"] - single["vlm"]["prob_malignant"]) < 1e-4


def test_api_lists_the_named_endpoints_and_hides_ui_callbacks(serve_app, tmp_path):
    from gradio_client import Client

    url = serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    client = Client(url, verbose=False)
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/predict", "/predict_batch", "/annotate_label", "/launch_run", "/stop_run", "/export_results"} <= names
    assert not [n for n in names if re.search(r"lambda|handler|partial|_\d+$", n)], names
    models = client.predict(api_name="/models")
    assert models["cnn"] and models["vlm"]


def test_annotation_through_the_api(serve_app, tmp_path):
    from gradio_client import Client

    settings = Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")
    url = serve_app(settings)
    client = Client(url, verbose=False)
    from histoapp.store import open_store

    store = open_store(settings.database_url)
    image_id = store.add_image(str(list_examples()[0]["path"]), dataset="api-test")
    assert client.predict(annotator="ana", api_name="/annotate_skip") == image_id
    saved = client.predict(image_id=image_id, label="malignant", annotator="ana", api_name="/annotate_label")
    assert saved["label"] == 1
    assert client.predict(annotator="ana", api_name="/annotate_skip") is None
    client.predict(annotator="ana", api_name="/annotate_undo")
    assert client.predict(annotator="ana", api_name="/annotate_skip") == image_id
    exported = client.predict(kind="csv", api_name="/annotate_export")
    assert Path(exported).read_text().count("\n") >= 1
