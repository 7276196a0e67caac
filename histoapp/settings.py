"""The app's settings: every ``HISTOAPP_*`` variable the app reads is read here (the trainer's own, such as the
offline switches, in ``trainer.env``); README lists them all. Handy on Hugging Face Spaces."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS = PROJECT_ROOT / "assets"
BUNDLED_DATA = ASSETS / "data"  # real data that ships with the project (assets/data/idc-mini)


def _paths(value: str) -> list[Path]:
    return [Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p]


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


RUN_BACKENDS = ("local", "slurm")


def _proxies() -> list[str]:
    """``HISTOAPP_TRUSTED_PROXIES``; on a Hugging Face Space (``SPACE_ID`` set) its own front proxies, which reach
    the app from private addresses, are trusted by default."""
    value = _env("HISTOAPP_TRUSTED_PROXIES", ",".join(SPACE_PROXIES) if _env("SPACE_ID") else "")
    return [p.strip() for p in value.split(",") if p.strip()]


# A Space's requests arrive through Hugging Face's proxies, from private (or loopback) addresses.
SPACE_PROXIES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128")

# Base VLMs offered zero-shot when the hub can be reached.
DEFAULT_HUB_MODELS = ("HuggingFaceTB/SmolVLM-256M-Instruct", "Qwen/Qwen2-VL-2B-Instruct")


@dataclass
class Settings:
    # Per-run folders made by the trainer (CLI and Train tab alike).
    runs_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("HISTOAPP_RUNS", PROJECT_ROOT / "runs")).resolve()
    )
    # Working data: generated demo datasets, uploads queued for annotation.
    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("HISTOAPP_DATA", PROJECT_ROOT / "data")).resolve()
    )
    # SQLAlchemy URL of the annotation database (SQLite by default).
    database_url: str = field(default_factory=lambda: os.environ.get("HISTOAPP_DB", ""))
    # Folders the Train/Annotate tabs may read datasets from (the browser must not name arbitrary paths);
    # default: data_dir and ../shared/data. The bundled data (assets/data) is always added.
    allowed_roots: list[Path] = field(default_factory=lambda: _paths(os.environ.get("HISTOAPP_DATA_ROOTS", "")))
    # A folder of slides on the server (a scanner's share, say) that the Slide tab lists and opens in place: a
    # whole slide of several GB is read region by region, never uploaded or copied. None: bundled examples only.
    slide_dir: Path | None = field(
        default_factory=lambda: Path(os.environ["HISTOAPP_SLIDES"]).resolve() if _env("HISTOAPP_SLIDES") else None
    )
    # Largest upload accepted by the app.
    max_upload_mb: int = field(default_factory=lambda: int(_env("HISTOAPP_MAX_UPLOAD_MB", "50")))
    # Hub ids offered zero-shot in the Predict tab (comma-separated).
    hub_models: list[str] = field(
        default_factory=lambda: (
            [m.strip() for m in _env("HISTOAPP_HUB_MODELS").split(",") if m.strip()] or list(DEFAULT_HUB_MODELS)
        )
    )
    # Training runs at once (a GPU, or this machine's CPUs, is shared badly by two trainings).
    max_parallel_runs: int = field(default_factory=lambda: int(_env("HISTOAPP_MAX_PARALLEL_RUNS", "1")))
    # Graceful stop first (the engine ends at the next step and keeps a checkpoint); forced after this long.
    stop_timeout_s: float = field(default_factory=lambda: float(_env("HISTOAPP_STOP_TIMEOUT_S", "120")))
    # CPU threads per run on a CPU-only machine (None: torch's default).
    run_threads: int | None = field(default_factory=lambda: int(_env("HISTOAPP_RUN_THREADS", "0")) or None)
    # Predictions: up to this many patches (from any number of requests) go through a model in one forward pass
    # (histoapp.models.batcher); 1: each request runs its own passes, two at a time.
    predict_batch: int = field(default_factory=lambda: max(1, int(_env("HISTOAPP_PREDICT_BATCH", "16"))))
    # torch's CPU threads for the app's models. Default: all cores but one, which is left to the web server (on a
    # 2-core CPU Space: 1). 0: torch's own default.
    torch_threads: int = field(
        default_factory=lambda: int(_env("HISTOAPP_TORCH_THREADS", str(max(1, (os.cpu_count() or 2) - 1))))
    )
    # The models run in a separate process started with the app (histoapp.models.worker), which imports torch and
    # loads the default models while the app imports Gradio; 0: they run in the app's process.
    model_worker: bool = field(default_factory=lambda: _env("HISTOAPP_MODEL_WORKER", "1") != "0")
    # Accounts and roles (``python -m histoapp.auth``); absent: no logins, the app is open to one local user.
    users_file: Path | None = field(
        default_factory=lambda: Path(_env("HISTOAPP_USERS")).expanduser().resolve() if _env("HISTOAPP_USERS") else None
    )
    # Public demo: Predict/Dashboard/About for everyone, no training or server-folder import. The default on a
    # Hugging Face Space (SPACE_ID is set there) unless HISTOAPP_PUBLIC=0; a users file takes precedence.
    public: bool = field(default_factory=lambda: _env("HISTOAPP_PUBLIC", "1" if _env("SPACE_ID") else "0") == "1")
    # Public demo limits: predictions per session per minute, and how long uploaded files are kept.
    public_predictions_per_min: int = field(default_factory=lambda: int(_env("HISTOAPP_PUBLIC_RATE", "20")))
    public_upload_ttl_s: int = field(default_factory=lambda: int(_env("HISTOAPP_PUBLIC_UPLOAD_TTL_S", "3600")))
    # Where Train-tab runs train: ``local`` (processes on this machine) or ``slurm`` (jobs on a SLURM cluster; the
    # run folder must be on storage the nodes share, docs/cluster.md).
    run_backend: str = field(default_factory=lambda: _env("HISTOAPP_RUN_BACKEND", "local").lower())
    # SLURM jobs: default partition and account (blank: the cluster's defaults), time limit (SLURM's syntax, e.g.
    # 1-00:00:00), GPUs per run (> 1: the trainer runs under ``accelerate launch``), CPUs per run (0: the
    # cluster's default), extra ``#SBATCH`` options (``;``-separated, e.g. ``--qos=long;--mem=32G``) and the
    # Python the nodes run (default: this app's, so its virtual environment must be on shared storage).
    slurm_partition: str = field(default_factory=lambda: _env("HISTOAPP_SLURM_PARTITION"))
    slurm_account: str = field(default_factory=lambda: _env("HISTOAPP_SLURM_ACCOUNT"))
    slurm_time: str = field(default_factory=lambda: _env("HISTOAPP_SLURM_TIME", "1-00:00:00"))
    slurm_gpus: int = field(default_factory=lambda: int(_env("HISTOAPP_SLURM_GPUS", "0")))
    slurm_cpus: int = field(default_factory=lambda: int(_env("HISTOAPP_SLURM_CPUS", "0")))
    slurm_extra: list[str] = field(
        default_factory=lambda: [s.strip() for s in _env("HISTOAPP_SLURM_EXTRA").split(";") if s.strip()]
    )
    slurm_python: str = field(default_factory=lambda: _env("HISTOAPP_SLURM_PYTHON"))
    # Public demo: pixels decoded per request, all its images together (a 35 KB PNG can hold 36 Mpx: the work is in
    # the pixels, not the bytes). JPEGs over it are decoded at 1/2, 1/4 or 1/8 scale; other images are refused.
    public_pixels: int = field(default_factory=lambda: int(_env("HISTOAPP_PUBLIC_PIXELS", "8000000")))
    # Public demo: events waiting in the queue, all visitors together; more are refused at once ("queue is full").
    public_queue: int = field(default_factory=lambda: int(_env("HISTOAPP_PUBLIC_QUEUE", "32")))
    # Proxies (addresses or networks, comma-separated) whose X-Forwarded-For names the client: the public rate
    # limit and the login throttle key on the client's address, which a client cannot choose.
    trusted_proxies: list[str] = field(default_factory=_proxies)
    # Browser sessions whose state the server keeps (Gradio's default: 10,000); the least recently used go first.
    max_sessions: int = field(default_factory=lambda: int(_env("HISTOAPP_MAX_SESSIONS", "500")))
    # A session's Predict results (its decoded patches) are dropped this long after they were made.
    session_ttl_s: int = field(default_factory=lambda: int(_env("HISTOAPP_SESSION_TTL_S", "3600")))
    # Interface the app listens on (app.py; 0.0.0.0 in a container or Space).
    server_name: str = field(default_factory=lambda: _env("GRADIO_SERVER_NAME", "127.0.0.1"))

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'annotations.db'}"
        if not self.allowed_roots:
            self.allowed_roots = [self.data_dir, (PROJECT_ROOT.parent / "shared" / "data").resolve()]
        if self.run_backend not in RUN_BACKENDS:
            raise ValueError(f"HISTOAPP_RUN_BACKEND={self.run_backend!r}: choose one of {', '.join(RUN_BACKENDS)}")
        if BUNDLED_DATA not in self.allowed_roots:  # the quick demo's real IDC subset ships with the app
            self.allowed_roots.append(BUNDLED_DATA)


def get_settings() -> Settings:
    return Settings()
