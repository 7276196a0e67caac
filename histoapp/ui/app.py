"""The Gradio Blocks application: one tab per module in ``histoapp.ui.tabs``."""

from __future__ import annotations

import os

# No telemetry calls: the app must start (and stay quiet) on machines without a network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from histoapp import auth, health, login, public, visitor_files
from histoapp.settings import Settings, get_settings
from histoapp.ui import api, failures
from histoapp.ui.context import AppContext
from histoapp.ui.tabs import about, annotate, dashboard, predict, slide, train

TITLE = "histoapp — breast-cancer histopathology: CNNs vs vision-language models"
TABS = [
    ("Predict", predict),
    ("Slide", slide),
    ("Annotate", annotate),
    ("Train", train),
    ("Dashboard", dashboard),
    ("About", about),
]


def build_app(settings: Settings | None = None) -> gr.Blocks:
    return build(settings)[0]


def build(
    settings: Settings | None = None, *, warm: bool = False, worker=None, problems: list[str] = ()
) -> tuple[gr.Blocks, AppContext]:
    """The Blocks app and its context; ``warm``: the page shows the warm-up (the caller starts ``ctx.warmup``
    once the page is served); ``worker``: the model worker that runs the models (else this process);
    ``problems``: what the start-up check found the app cannot write (``histoapp.health.problems``), shown on
    the page."""
    ctx = AppContext(settings or get_settings(), warm=warm, worker=worker)
    # Gradio's cached uploads and downloads expire (public mode: after its upload TTL; elsewhere a day), in a
    # folder no other server on this machine sweeps.
    visitor_files.own_gradio_cache()
    with gr.Blocks(title=TITLE, delete_cache=visitor_files.cache_policy(ctx.settings)) as demo:
        ctx.blocks = demo
        gr.Markdown(f"# {TITLE}\nResearch and teaching tool — not a diagnostic device.")
        who = gr.Markdown(mode_note(ctx.settings, None), elem_id="who")
        if problems:
            gr.Markdown(problems_note(problems), elem_id="problems")
        if auth.mode(ctx.settings) == "users" and not auth.password_logins(ctx.settings):
            gr.LoginButton()  # Hugging Face accounts (a Space with ``hf_oauth: true``); roles from the users file
        tabs = []
        # A public demo builds only the viewer's tabs: the others' forms would show its server paths in /config.
        built = [
            (n, m) for n, m in TABS if auth.mode(ctx.settings) != "public" or n.lower() in _tabs(ctx.settings, None)
        ]
        with gr.Tabs():
            for name, module in built:
                with gr.Tab(name, id=name.lower(), visible=name.lower() in _tabs(ctx.settings, None)) as ctx.tab:
                    module.build(ctx)
                tabs.append(ctx.tab)
        ctx.tab = None

        # Each page load shows the tabs of its user's role (the handlers check the role again on every call).
        def per_user(request: gr.Request):
            shown = _tabs(ctx.settings, request)
            return (mode_note(ctx.settings, request), *[gr.Tab(visible=n.lower() in shown) for n, _ in built])

        demo.load(per_user, None, [who, *tabs], api_visibility="private")
        # The tabs' handlers are UI plumbing: none is an API endpoint. The API is ``histoapp.ui.api``.
        for fn in demo.fns.values():
            fn.api_visibility = "private"
        api.register(ctx)
        failures.explain_all(demo, ctx.settings)
    return demo, ctx


def _tabs(settings: Settings, request) -> tuple[str, ...]:
    return auth.TABS_FOR_ROLE.get(auth.role_of(settings, request), ())


def mode_note(settings: Settings, request) -> str:
    """One line saying who the app takes you for, so an open or public app shows what it is."""
    current = auth.mode(settings)
    if current == "open":
        return "*Open mode: no logins, one local user with every right (set `HISTOAPP_USERS` for accounts).*"
    if current == "public":
        return (
            "*Public demo: Predict, Dashboard and About only. Training, deleting runs and server-folder import are "
            "off here; run the app yourself for them.*"
        )
    user = auth.user_of(request)
    return f"Logged in as **{user}** ({auth.role_of(settings, request) or 'no role'})." if user else ""


def problems_note(problems: list[str]) -> str:
    """The start-up check's findings: Predict still works; what needs the failing place says why when used."""
    lines = "\n".join(f"- {p}" for p in problems)
    return (
        "⚠️ **Running read-only: predictions work; what needs the places below (annotating, training, exports) "
        f"fails with the reason until they are fixed and the app restarted.**\n{lines}"
    )


def login_options(settings: Settings) -> dict:
    """``demo.launch`` arguments for logins: Gradio's password form checked against the users file (read per
    login, so ``python -m histoapp.auth add`` takes effect without a restart), throttled and off the event loop
    (``histoapp.login``); none in open or public mode."""
    if auth.mode(settings) != "users" or not auth.password_logins(settings):
        return {}
    return {"auth": login.auth_callable(settings), "auth_message": login.AUTH_MESSAGE}


def launch_options(settings: Settings) -> dict:
    """Every ``demo.launch`` argument that bounds what visitors cost: logins, the sessions kept in memory, the
    middleware that tells the login who is asking, and the sweep of expired downloads."""
    return {
        **login_options(settings),
        "state_session_capacity": settings.max_sessions,
        "app_kwargs": {
            "middleware": [Middleware(login.PeerMiddleware)],
            "lifespan": visitor_files.lifespan(settings),
        },
    }


def launch(worker=None, **kwargs) -> None:
    """Serve the app. ``worker``: the model worker ``app.py`` started before importing Gradio; else one is started
    here (``histoapp.models.worker_client.start_worker``; none with ``HISTOAPP_MODEL_WORKER=0`` or on ZeroGPU,
    where the models load in this process once the page is served)."""
    from histoapp.models.worker_client import start_worker
    from trainer.threads import limit_blas

    settings = get_settings()
    worker = worker or start_worker(settings)
    # This process's numpy (uploads, the maps' pictures, in-process models, slides) at one BLAS thread: more only
    # spin against the model worker and the web server on a small machine (trainer.threads).
    limit_blas(1)
    problems = health.problems(settings)
    for line in problems:
        print(f"* Start-up check: {line}", flush=True)
    demo, ctx = build(settings, warm=True, worker=worker, problems=problems)
    demo.queue(**public.queue_options(settings))
    block = not kwargs.pop("prevent_thread_lock", False)
    try:
        demo.launch(
            **{
                "server_name": settings.server_name,
                "max_file_size": f"{settings.max_upload_mb}mb",
                **launch_options(settings),
                **kwargs,
                "prevent_thread_lock": True,
            }
        )
    except ValueError as exc:
        # Gradio asks its own page once the server runs and gives up if it does not answer within 3 s, which a
        # starved CPU (a busy machine, the model worker importing torch beside it) can cause: the server is up.
        if "localhost is not accessible" not in str(exc) or not getattr(demo, "is_running", False):
            raise
        print(f"* Running on local URL:  {demo.local_url} (its first self-check was slow to answer)", flush=True)
    ctx.warmup.start()  # in-process models: load them now the page is served (the worker already does)
    if block:
        try:
            demo.block_thread()
        finally:
            ctx.models.close()
