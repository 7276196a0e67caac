"""The run folder's layout, owned here and nowhere else (the contract in docs/ARCHITECTURE.md): its file names,
its fold folders ``<model>/<mag>/fold<k>/``, and the readers of its live files (``status.json``, ``metrics.jsonl``).
The trainer writes through it and the app, the Dashboard and the stats read through it. Torch-free (and
numpy-free), so the app can list runs without importing the training stack."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

CONFIG_FILE = "config.yaml"
SPLITS_FILE = "splits.json"
STATUS_FILE = "status.json"
EVENTS_FILE = "metrics.jsonl"
LOG_FILE = "log.txt"
LAUNCH_FILE = "launch.json"
JOB_SCRIPT = "job.sh"  # the SLURM batch script of the run's latest submission (histoapp.runs.slurm)
STOP_FILE = "STOP"
DATA_REPORT_FILE = "data_report.json"  # the dataset's problems, skipped (trainer.data.index)
ERROR_FILE = "error.txt"  # the traceback of a failed run
RESULTS_FILES = {"json": "results.json", "csv": "results.csv", "md": "results.md"}
FOLD_METRICS = "metrics.json"  # its presence marks a finished fold (a re-run skips it)
PREDICTIONS_FILE = "predictions.csv"
# predictions.csv columns named prob_* that are not one class's probability (P(malignant), before calibration).
_NOT_CLASS_COLUMNS = ("prob_benign", "prob_malignant", "prob_malignant_raw")


def predicts_subtypes(columns) -> bool:
    """Whether predictions.csv ``columns`` are an 8-subtype run's (``prob_<code>`` per subtype), not a binary one's."""
    return any(c.startswith("prob_") and c not in _NOT_CLASS_COLUMNS for c in columns)


BEST_DIR, LAST_DIR = "best", "last"
# A checkpoint folder (``best/``, or an exported model): every family's ``save()`` writes ADAPTER_FILE, with at
# least {"family", "num_classes", "model"}; the engine adds ENGINE_META (input size, classes, fold, epoch ...).
ADAPTER_FILE = "adapter.json"
ENGINE_META = "engine.json"
# A checkpoint's trust files (``trainer.trust``): the OOD reference's arrays and its threshold, temperature and
# abstention bounds. Absent in checkpoints made before them (they then show "no OOD reference").
TRUST_FILE, TRUST_ARRAYS = "trust.json", "trust.safetensors"
EVAL_PREFIX = "eval-"  # ``trainer evaluate`` writes <checkpoint>/../eval-<dataset>/


# --- small file helpers shared by every writer and reader of the folder ---------------------------------------
def clean_json(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Readers (the UI) never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | Path, data) -> Path:
    return write_text_atomic(path, json.dumps(clean_json(data), indent=1))


def read_json(path: str | Path) -> dict | None:
    """A JSON file, or None when it is missing or torn (a writer may be replacing it)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping, ``{}`` when missing or unreadable."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, ValueError):
        return {}


def read_events(path: str | Path) -> list[dict]:
    """All complete events of a (possibly live) ``metrics.jsonl``; a torn last line is ignored."""
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def pid_alive(pid) -> bool:
    """True while ``pid`` runs (a zombie, i.e. ended but not yet reaped, counts as ended)."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): os.kill said it exists


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def this_host() -> str:
    return socket.gethostname()


def read_status(run_dir: str | Path) -> dict | None:
    """The run's status, with ``state`` corrected to ``failed`` when it claims ``running`` but its process is gone."""
    status = read_json(Path(run_dir) / STATUS_FILE)
    if status is None:
        return None
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status = {
            **status,
            "state": "failed",
            "message": (status.get("message") or "") + " (process ended without a final status)",
        }
    return status


def reconcile_status(run_dir: str | Path, alive=pid_alive) -> dict | None:
    """The run's status, and ``status.json`` itself corrected to ``failed`` when it says ``running`` but its process
    (``pid`` on this host, asked with ``alive(pid)``) is gone: a SIGKILL or a crash leaves no final status. A run
    on another host (``host``) is left to whatever can see it: a scheduler backend passes its own ``alive``."""
    path = Path(run_dir) / STATUS_FILE
    status = read_json(path)
    if status is None or status.get("state") != "running":
        return status
    if status.get("host", this_host()) != this_host() and alive is pid_alive:
        return status
    if alive(status.get("pid")):
        return status
    fixed = {
        **status,
        "state": "failed",
        "updated": now_iso(),
        "message": f"process {status.get('pid')} ended without a final status (killed or crashed)"
        + (f"; last: {status['message']}" if status.get("message") else ""),
    }
    if read_json(path) == status:  # not replaced meanwhile by a new attempt's own status
        with contextlib.suppress(OSError):  # a read-only runs folder: still report it corrected
            write_json_atomic(path, fixed)
    return fixed


# --- attempts: each start of the runner on a run folder (a resume after a stop, a kill) ------------------------
def event_attempts(events: list[dict]) -> list[int]:
    """Each event's attempt: its ``attempt`` field; events written before attempt ids count by their
    ``run_start`` events (the first start is attempt 1)."""
    out, legacy = [], 0
    for e in events:
        if e.get("event") == "run_start" and "attempt" not in e:
            legacy += 1
        out.append(int(e["attempt"]) if "attempt" in e else legacy)
    return out


def next_attempt(events: list[dict]) -> int:
    """The id of a new attempt at a run whose ``metrics.jsonl`` holds ``events``."""
    return max(event_attempts(events), default=0) + 1


def _series(e: dict) -> tuple:
    return e.get("model"), e.get("magnification"), e.get("fold")


def current_events(events: list[dict]) -> list[dict]:
    """The events as the latest attempt at each fold sees them, for curves: when a later attempt trained a fold
    again, it replaces an earlier attempt's ``step`` / ``epoch`` events of that fold from where it began (its
    ``resume`` step and epoch, or the start); the killed attempt's steps past its last checkpoint are gone."""
    attempts = event_attempts(events)
    starts: dict[tuple, dict[int, tuple[int, int]]] = {}  # fold -> attempt -> (step, epoch) it began at
    for e, a in zip(events, attempts, strict=True):
        if e.get("event") == "fold_start":
            starts.setdefault(_series(e), {})[a] = (0, 0)
        elif e.get("event") == "resume":
            starts.setdefault(_series(e), {})[a] = (int(e.get("step") or 0), int(e.get("epoch") or 0))

    def superseded(e: dict, a: int) -> bool:
        later = [v for b, v in starts.get(_series(e), {}).items() if b > a]
        if not later:
            return False
        if e["event"] == "step":
            return (e.get("step") or 0) > min(step for step, _ in later)
        return (e.get("epoch") or 0) >= min(epoch for _, epoch in later)

    return [
        e
        for e, a in zip(events, attempts, strict=True)
        if e.get("event") not in ("step", "epoch") or not superseded(e, a)
    ]


def checkpoint_family(directory: str | Path) -> str | None:
    """The model family a checkpoint folder names, without loading it (nor importing a model stack)."""
    meta = read_json(Path(directory) / ADAPTER_FILE)
    return meta.get("family") if isinstance(meta, dict) else None


def _folder_name(value, what: str) -> str:
    """``value`` as one plain folder name (no ``..``, separator, NUL or leading dot), else ``ValueError``."""
    text = str(value or "")
    if not text or text.startswith(".") or any(c in text for c in "/\\\0"):
        raise ValueError(f"no {what} named {text!r}: a {what} name is one folder name in the runs folder")
    return text


# --- the layout ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoldDir:
    """``<run>/<model>/<mag>/fold<k>/``: one cell of the grid."""

    path: Path

    @property
    def run(self) -> str:
        return self.path.parent.parent.parent.name

    @property
    def model(self) -> str:
        return self.path.parent.parent.name

    @property
    def magnification(self) -> str:
        return self.path.parent.name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fold(self) -> int:
        return int(self.path.name.removeprefix("fold"))

    @property
    def best(self) -> Path:
        return self.path / BEST_DIR

    @property
    def last(self) -> Path:
        return self.path / LAST_DIR

    @property
    def metrics_file(self) -> Path:
        return self.path / FOLD_METRICS

    @property
    def predictions_file(self) -> Path:
        return self.path / PREDICTIONS_FILE

    @property
    def finished(self) -> bool:
        return self.metrics_file.is_file()

    def metrics(self) -> dict | None:
        """The fold's ``metrics.json`` record (``model``, ``magnification``, ``fold``, ``metrics`` ...), or None."""
        return read_json(self.metrics_file)


class RunDir:
    """``<output_dir>/<name>/``: every path the trainer writes and the app reads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # files
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def splits_file(self) -> Path:
        return self.path / SPLITS_FILE

    @property
    def status_file(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def events_file(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def launch_file(self) -> Path:
        return self.path / LAUNCH_FILE

    @property
    def job_script(self) -> Path:
        return self.path / JOB_SCRIPT

    @property
    def stop_file(self) -> Path:
        return self.path / STOP_FILE

    @property
    def data_report_file(self) -> Path:
        return self.path / DATA_REPORT_FILE

    @property
    def error_file(self) -> Path:
        return self.path / ERROR_FILE

    def results_file(self, kind: str = "json") -> Path:
        return self.path / RESULTS_FILES[kind]

    def is_run(self) -> bool:
        """A folder some run (app launch or CLI) has started in."""
        return self.path.is_dir() and any(p.exists() for p in (self.config_file, self.launch_file, self.status_file))

    # readers
    def config(self) -> dict:
        """The saved ``config.yaml`` as a plain mapping (``{}`` when missing); ``ExperimentConfig.from_yaml``
        reads it typed."""
        return read_yaml(self.config_file)

    def status(self) -> dict | None:
        """``status.json``, reconciled (``reconcile_status``): a dead process's "running" is rewritten as failed."""
        return reconcile_status(self.path)

    def events(self) -> list[dict]:
        return read_events(self.events_file)

    def splits(self) -> dict | None:
        return read_json(self.splits_file)

    # folds
    def fold(self, model: str, magnification: str, fold: int) -> FoldDir:
        return FoldDir(self.path / model / magnification / f"fold{fold}")

    def folds(
        self, model: str | None = None, magnification: str | None = None, *, finished: bool | None = None
    ) -> list[FoldDir]:
        """The fold folders (sorted), optionally of one model / magnification, finished (``metrics.json``) or not."""
        # Names from a client (the Dashboard's keys) stay plain folder names, never a way out of the run.
        model = _folder_name(model, "model") if model else "*"
        magnification = _folder_name(magnification, "magnification") if magnification else "*"
        pattern = f"{model}/{magnification}/fold*"
        out = []
        for p in sorted(self.path.glob(pattern)):
            if not p.is_dir() or not p.name.removeprefix("fold").isdigit():
                continue
            fd = FoldDir(p)
            if finished is None or fd.finished == finished:
                out.append(fd)
        return out

    def has_results(self) -> bool:
        """At least one finished fold."""
        return any(True for _ in self.folds(finished=True))

    def models(self, *, with_predictions: bool = False) -> list[str]:
        folds = self.folds()
        return sorted({f.model for f in folds if not with_predictions or f.predictions_file.is_file()})

    def evaluations(self) -> list[Path]:
        """``metrics.json`` files of ``trainer evaluate`` runs on other datasets (``eval-*`` folders below)."""
        return sorted(self.path.glob(f"**/{EVAL_PREFIX}*/{FOLD_METRICS}"))


def run_in(runs_dir: str | Path, name: str) -> RunDir:
    """The run folder ``name`` directly below ``runs_dir``. A name is one plain folder name: one that would leave
    the runs folder (``..``, a path, an absolute path) or name a hidden folder is refused with ``ValueError``, so
    no caller (an API client sends any string) reads or deletes outside it."""
    return RunDir(Path(runs_dir) / _folder_name(name, "run"))


def runs_in(runs_dir: str | Path) -> list[RunDir]:
    """The run folders directly below ``runs_dir`` (hidden folders, e.g. caches and exports, excluded)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    return [RunDir(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
