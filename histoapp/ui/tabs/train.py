"""Train tab: a form bound to the trainer's ExperimentConfig, presets, launch as a separate process or a SLURM
job (``ctx.launcher``, ``histoapp.runs.launch``; ``ctx.runs``, ``histoapp.runs.backend.RunBackend``), a live view
refreshed by a timer, stop / resume / delete, history.

The handlers are plain functions of ``ctx`` so tests call them without a browser."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from histoapp.auth import current_request, requires, role_of, user_of, who
from histoapp.runs import LaunchRefused
from histoapp.runs.form import FIELDS, PRESETS, SOURCES, PresetMissing, config_to_form, load_preset
from histoapp.runs.live import curves, format_duration, format_eta
from histoapp.ui.bind import bind
from histoapp.ui.context import AppContext
from trainer.data.records import MAGNIFICATIONS
from trainer.rundir import RunDir

DEFAULT_PRESET = "small demo (CPU: 5 min alone, up to 1 h busy)"
SCROLL_LOG_JS = (
    "() => { const t = document.querySelector('#train-log textarea'); if (t) t.scrollTop = t.scrollHeight; }"
)
HISTORY_COLUMNS = ["run", "state", "models", "magnifications", "folds done", "launched", "by", "message"]


# --- handlers ---------------------------------------------------------------------------------------------
def preset_values(ctx: AppContext, preset: str) -> tuple:
    """(base config dict, message, *form values) for a preset; a missing preset leaves the form as it is."""
    try:
        cfg = load_preset(preset, ctx.settings)
    except PresetMissing as exc:
        return (gr.update(), f"⚠️ {exc}", *[gr.update() for _ in FIELDS])
    form = config_to_form(cfg, ctx.settings) | {"name": ""}  # blank: stamped at launch
    return (cfg.to_dict(), f"Preset **{preset}** loaded.", *[form[k] for k in FIELDS])


# The form fields that apply to only some model families (the rest apply to all).
LORA_FAMILIES = ("vlm",)  # LoRA r / alpha / dropout: the VLM adapters' fine-tuning
PRETRAINED_FAMILIES = ("cnn",)  # ImageNet weights: torchvision CNNs


def family_fields(family: str) -> tuple:
    """Visibility of (the LoRA row, the ImageNet-pretrained box) for a model family."""
    return gr.update(visible=family in LORA_FAMILIES), gr.update(visible=family in PRETRAINED_FAMILIES)


def _lines(errors: list[str], warnings: list[str]) -> list[str]:
    return [f"❌ {e}" for e in errors] + [f"⚠️ {w}" for w in warnings]


@requires("researcher")
def check_form(ctx: AppContext, base: dict, *values) -> str:
    report = ctx.launcher.check(base, values)
    return "\n\n".join(_lines(report.errors, report.warnings)) or "✅ Ready to launch."


def record_run_action(ctx: AppContext, action: str, name: str) -> None:
    """Who launched, stopped, resumed or deleted a run, in the store's audit log."""
    ctx.store.log_action(who(ctx.settings), action, "runs", {"run": name})


def check_owner(ctx: AppContext, name: str) -> None:
    """A researcher acts on the runs they launched; an admin on every run (the audit log says who launched it)."""
    request = current_request()
    if role_of(ctx.settings, request) == "admin":
        return
    me = user_of(request)
    launched = [e for e in ctx.store.audit_log() if e["table_name"] == "runs" and e["action"] == "launch"]
    owner = next((e["actor"] for e in launched if (e["after"] or {}).get("run") == name), None)
    if owner != me:
        raise gr.Error(
            f"Refused: {name} was launched by {owner or 'someone outside the app'}; only an admin may change it."
        )


@requires("researcher")
def launch(ctx: AppContext, base: dict, *values) -> tuple[str, object]:
    """Validate and start (or queue) the run; returns (message, run selector update)."""
    report = ctx.launcher.launch(base, values, user=who(ctx.settings))
    if not report.ok:
        return "Not launched:\n\n" + "\n\n".join(_lines(report.errors, [])), gr.update()
    info = report.info
    record_run_action(ctx, "launch", info.name)
    where = f"pid {info.pid or '—'}"
    if info.job:  # the scheduler's word, e.g. "SLURM job 12 pending (Resources)"
        where = info.message.splitlines()[0] if info.message else f"SLURM job {info.job}"
    msg = f"🚀 **{info.name}**: {info.state} ({where}). Log: `{RunDir(info.path).log_file}`"
    return "\n\n".join([msg] + _lines([], report.warnings)), run_choices(ctx, info.name)


def run_choices(ctx: AppContext, value: str | None = None):
    """The Run dropdown as the runs folder has it now: ``value`` kept when it is still there, else the run that
    is active (running, starting, stopping, queued), else the newest. Called on page load too, so a reload or a
    second visitor sees the run going on (the dropdown drawn when the app started knows none launched since)."""
    infos = ctx.runs.list_runs()
    names = [i.name for i in infos]
    if value not in names:
        value = next((i.name for i in infos if i.active or i.state == "queued"), names[0] if names else None)
    return gr.update(choices=names, value=value)


@requires("researcher")
def ask_delete(ctx: AppContext, name: str | None) -> tuple[str, object, object]:
    """Delete's first click: (message, the confirmation box, its text). Nothing is deleted until it is confirmed;
    the box says what would be lost."""
    if not name:
        return "Select a run first.", gr.update(visible=False), ""
    check_owner(ctx, name)
    info = ctx.runs.info(name)
    if info.active:
        return f"❌ {name} is {info.state}: stop it before deleting it", gr.update(visible=False), ""
    prog = ctx.runs.progress(name)
    done = f"{prog['folds_done']} of {prog['folds_total']}" if prog["folds_total"] else str(prog["folds_done"])
    text = (
        f"**Delete {name} for good?** It is {info.state}, with {done} fold(s) finished; its folder, checkpoints "
        "and logs are removed and cannot be brought back."
    )
    return "", gr.update(visible=True), text


def history(ctx: AppContext) -> pd.DataFrame:
    rows = []
    for i in ctx.runs.list_runs():
        cfg = i.config or {}
        data = cfg.get("data") or {}
        prog = ctx.runs.progress(i.name)
        done = f"{prog['folds_done']}/{prog['folds_total']}" if prog["folds_total"] else str(prog["folds_done"])
        rows.append(
            {
                "run": i.name,
                "state": i.state,
                "models": ", ".join(m.get("label") or m.get("name", "?") for m in cfg.get("models") or []),
                "magnifications": ", ".join(data.get("magnifications") or []),
                "folds done": done,
                "launched": pd.Timestamp(i.launched, unit="s").strftime("%Y-%m-%d %H:%M") if i.launched else "",
                "by": i.by or "",
                "message": (i.message or "").splitlines()[0] if i.message else "",
            }
        )
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def status_markdown(info, prog: dict) -> str:
    icon = {
        "running": "🟢",
        "starting": "🟡",
        "stopping": "🟠",
        "queued": "⏳",
        "finished": "✅",
        "stopped": "⏹️",
        "failed": "❌",
    }.get(info.state, "•")
    lines = [f"### {icon} {info.name} — {info.state}"]
    origin = ([f"submitted by **{info.by}**"] if info.by else []) + ([f"SLURM job {info.job}"] if info.job else [])
    if origin:
        lines.append(" · ".join(origin))
    if prog["folds_total"]:
        pct = f"{100 * prog['fraction']:.0f}%" if prog["fraction"] is not None else "—"
        lines.append(
            f"**Progress** {pct} · folds {prog['folds_done']}/{prog['folds_total']} finished"
            + (
                f" · now {prog['current']}, epoch {(prog['epoch'] or 0) + 1}/{prog['epochs']}, step {prog['step'] or 0}/{prog['steps_total'] or '?'}"
                if prog["current"] and info.active
                else ""
            )
        )
    if info.active:
        lines.append(f"**ETA** {format_eta(prog['eta_s'])} · elapsed {format_duration(prog['elapsed_s'])}")
    if prog["images_per_s"] is not None:
        lines.append(
            f"**Speed** {prog['images_per_s']:.1f} images/s · **memory** {prog['mem_mb'] or 0:.0f} MB "
            "(GPU peak allocated on a GPU, else the process's resident memory)"
        )
    if info.message:
        first, *rest = info.message.split("\n--- log tail ---\n")
        lines.append(f"**Message** {first}")
    return "\n\n".join(lines)


def live_view(ctx: AppContext, name: str | None) -> tuple:
    """(status markdown, loss figure, validation figure, log tail, history table) of the selected run."""
    from histoapp.runs.figures import loss_figure, validation_figure  # plotly: on first use, not at app start

    ctx.runs.refresh()  # start queued runs, escalate overdue stops (also done by the manager's thread)
    table = history(ctx)
    if not name:
        return (
            "No run selected. Launch one, or pick one in the history below.",
            loss_figure(pd.DataFrame(columns=["series"])),
            validation_figure(pd.DataFrame(columns=["series"])),
            "",
            table,
        )
    try:
        info = ctx.runs.info(name)
    except LaunchRefused as exc:
        return f"⚠️ {exc}", gr.update(), gr.update(), "", table
    c = curves(info.path, ctx.runs.events(name))
    prog = ctx.runs.progress(name)
    return (
        status_markdown(info, prog),
        loss_figure(c["steps"]),
        validation_figure(c["epochs"]),
        ctx.runs.log_tail(name, 60),
        table,
    )


@requires("researcher")
def apply_run_action(ctx: AppContext, name: str, action: str) -> str:
    """Stop, kill, resume or delete a run and log who did; returns the message. A refusal raises (``LaunchRefused``
    with the reason, or ``gr.Error`` for someone else's run), so no caller reports a change that did not happen."""
    check_owner(ctx, name)
    if action == "stop":
        info = ctx.runs.stop(name)
        msg = (
            f"⏹️ Stop requested for **{name}** ({info.state}); it ends at the next step and keeps a checkpoint "
            f"(forced after {int(ctx.runs.stop_timeout_s)} s)."
        )
    elif action == "kill":
        info = ctx.runs.stop(name, force=True)
        msg = f"⛔ **{name}** killed ({info.state})."
    elif action == "resume":
        info = ctx.runs.resume(name)
        msg = f"▶️ **{name}** resumed ({info.state}); finished folds are skipped."
    elif action == "delete":
        ctx.runs.delete(name)
        msg = f"🗑️ **{name}** deleted."
    else:
        raise ValueError(action)
    record_run_action(ctx, action, name)
    return msg


@requires("researcher")
def run_action(ctx: AppContext, name: str | None, action: str) -> tuple[str, object]:
    if not name:
        return "Select a run first.", gr.update()
    try:
        msg = apply_run_action(ctx, name, action)
    except LaunchRefused as exc:
        return f"❌ {exc}", gr.update()
    return msg, run_choices(ctx) if action == "delete" else gr.update()


def hide() -> dict:
    """The delete question put away (answered, or about another run)."""
    return gr.update(visible=False)


def cancel_delete() -> tuple:
    return hide(), "Nothing deleted."


stop_run = bind(run_action, action="stop")
kill_run = bind(run_action, action="kill")
resume_run = bind(run_action, action="resume")
delete_run = bind(run_action, action="delete")


# --- layout ----------------------------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    gr.Markdown(
        "### Train\nStart the paper's experiments (or the quick CPU demo, on the bundled real IDC patches in "
        "`assets/data/idc-mini`) as separate trainer processes, follow them live, "
        "stop and resume them. Runs keep going when the browser closes; the same run folders as "
        f"`python -m trainer cv` (`{ctx.settings.runs_dir}`)."
    )
    start = load_preset(DEFAULT_PRESET, ctx.settings)
    form0 = config_to_form(start, ctx.settings)
    base = gr.State(start.to_dict())
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset", scale=2)
        name = gr.Textbox(
            "",
            label="Run name",
            placeholder=f"blank: {start.name}-<date>-<time>, stamped at launch",
            scale=3,
            elem_id="train-name",
        )
    comps: dict[str, gr.components.Component] = {"name": name}
    with gr.Row():
        comps["model.family"] = gr.Radio(["cnn", "vlm"], value=form0["model.family"], label="Model family")
        comps["models.name"] = gr.Textbox(
            form0["models.name"],
            lines=2,
            max_lines=6,
            label="Models: architecture or hub id, one per line (optional mode=..., label=...)",
        )
        comps["model.mode"] = gr.Dropdown(
            ["full", "linear_probe", "lora", "qlora"], value=form0["model.mode"], label="Mode"
        )
        comps["model.pretrained"] = gr.Checkbox(
            value=form0["model.pretrained"],
            label="ImageNet-pretrained",
            visible=form0["model.family"] in PRETRAINED_FAMILIES,
        )
    with gr.Row(visible=form0["model.family"] in LORA_FAMILIES) as lora_row:
        comps["model.lora.r"] = gr.Number(form0["model.lora.r"], label="LoRA r", precision=0)
        comps["model.lora.alpha"] = gr.Number(form0["model.lora.alpha"], label="LoRA alpha", precision=0)
        comps["model.lora.dropout"] = gr.Number(form0["model.lora.dropout"], label="LoRA dropout")
    with gr.Row():
        comps["data.source"] = gr.Dropdown(list(SOURCES), value=form0["data.source"], label="Data source")
        comps["data.root"] = gr.Textbox(
            form0["data.root"], label="Data folder (inside the allowed data roots)", scale=2
        )
        comps["data.magnifications"] = gr.CheckboxGroup(
            [*MAGNIFICATIONS, "all"], value=form0["data.magnifications"], label="Magnifications"
        )
        comps["data.target"] = gr.Radio(["label", "subtype"], value=form0["data.target"], label="Target")
    with gr.Row():
        comps["data.folds"] = gr.Number(form0["data.folds"], label="Folds", precision=0)
        comps["data.input_size"] = gr.Number(form0["data.input_size"], label="Input size (px)", precision=0)
        comps["data.stain_normalization"] = gr.Dropdown(
            ["none", "macenko", "reinhard"], value=form0["data.stain_normalization"], label="Stain normalisation"
        )
        comps["train.epochs"] = gr.Number(form0["train.epochs"], label="Epochs", precision=0)
        comps["train.lr"] = gr.Number(form0["train.lr"], label="Learning rate")
        comps["train.batch_size"] = gr.Number(form0["train.batch_size"], label="Batch size", precision=0)
        comps["train.grad_accum"] = gr.Number(form0["train.grad_accum"], label="Gradient accumulation", precision=0)
        comps["train.max_steps"] = gr.Number(
            form0["train.max_steps"], label="Max steps per fold (0: none)", precision=0
        )
    comps["overrides"] = gr.Textbox(
        "", label="More settings: one config key=value per line (e.g. train.optimizer=sgd)", lines=2
    )
    fields = [comps[k] for k in FIELDS]
    # The scheduler's request (SLURM backend only): sent after the config fields, blank fields take the settings'.
    with gr.Row(visible=ctx.settings.run_backend == "slurm"):
        job = [
            gr.Textbox(ctx.settings.slurm_partition, label="SLURM partition (blank: the cluster's default)"),
            gr.Number(ctx.settings.slurm_gpus, label="GPUs per run", precision=0, minimum=0),
            gr.Textbox(ctx.settings.slurm_time, label="Time limit (D-HH:MM:SS)"),
        ]
    with gr.Row():
        check_btn = gr.Button("Check")
        launch_btn = gr.Button("Launch", variant="primary", elem_id="train-launch")
    message = gr.Markdown(elem_id="train-message")

    gr.Markdown("#### Live view")
    with gr.Row():
        names = [i.name for i in ctx.runs.list_runs()]
        run = gr.Dropdown(names, value=names[0] if names else None, label="Run", scale=3, elem_id="train-run")
        stop_btn = gr.Button("Stop", elem_id="train-stop")
        kill_btn = gr.Button("Force stop")
        resume_btn = gr.Button("Resume", elem_id="train-resume")
        delete_btn = gr.Button("Delete", variant="stop", elem_id="train-delete")
    status = gr.Markdown(elem_id="train-status")
    with gr.Row():
        loss_plot = gr.Plot(label="Training loss", elem_id="train-loss-plot")
        val_plot = gr.Plot(label="Validation", elem_id="train-val-plot")
    with gr.Column(visible=False, elem_id="train-delete-box") as delete_box:
        delete_text = gr.Markdown(elem_id="train-delete-text")
        with gr.Row():
            confirm_btn = gr.Button("Delete for good", variant="stop", elem_id="train-delete-confirm")
            cancel_btn = gr.Button("Keep it", elem_id="train-delete-cancel")
    log = gr.Textbox(label="Log (newest lines)", lines=12, max_lines=12, elem_id="train-log")
    hist = gr.Dataframe(
        headers=HISTORY_COLUMNS,
        label="Run history (select a row to view it)",
        interactive=False,
        elem_id="train-history",
    )
    timer = gr.Timer(2.0)

    live_outputs = [status, loss_plot, val_plot, log, hist]
    comps["model.family"].change(family_fields, comps["model.family"], [lora_row, comps["model.pretrained"]])
    preset.change(bind(preset_values, ctx), preset, [base, message, *fields])
    check_btn.click(bind(check_form, ctx), [base, *fields, *job], message)
    launch_btn.click(bind(launch, ctx), [base, *fields, *job], [message, run]).then(
        bind(live_view, ctx), run, live_outputs
    )
    for btn, fn in ((stop_btn, stop_run), (kill_btn, kill_run), (resume_btn, resume_run)):
        btn.click(bind(fn, ctx), run, [message, run]).then(bind(live_view, ctx), run, live_outputs)
    # Delete asks first; the run is deleted only by the confirmation's button.
    delete_btn.click(bind(ask_delete, ctx), run, [message, delete_box, delete_text])
    confirm_btn.click(hide, None, delete_box).then(bind(delete_run, ctx), run, [message, run]).then(
        bind(live_view, ctx), run, live_outputs
    )
    cancel_btn.click(cancel_delete, None, [delete_box, message])
    run.change(hide, None, delete_box)  # a question about another run does not stay
    run.change(bind(live_view, ctx), run, live_outputs)
    # The log box shows its newest lines: scrolled to the end whenever it changes.
    log.change(None, None, None, js=SCROLL_LOG_JS)
    # A reload or another visitor: the runs as they are now, the active one selected (see run_choices).
    if ctx.blocks is not None:
        ctx.blocks.load(bind(run_choices, ctx), None, run, show_progress="hidden")
    if ctx.tab is not None:
        ctx.tab.select(bind(run_choices, ctx), run, run, show_progress="hidden")
    timer.tick(bind(live_view, ctx), run, live_outputs, show_progress="hidden")

    def pick(evt: gr.SelectData, table):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return run_choices(ctx, str(pd.DataFrame(table).iloc[row]["run"]))

    hist.select(pick, hist, run)
