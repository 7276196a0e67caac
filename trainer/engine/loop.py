"""The training loop, generic over ``ModelAdapter``: the same code on CPU, one GPU or several
(``accelerate launch``, DDP), bf16/fp16 autocast on GPU, gradient accumulation, best-on-validation
checkpoint, early stopping, resume from ``last/``, and a clean stop at the next step."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from trainer.config import TrainConfig
from trainer.engine.checkpoint import (
    load_resume_state,
    load_trainable_state,
    read_counters,
    save_resume_state,
    trainable_state,
)
from trainer.engine.ema import WeightEMA
from trainer.engine.events import EventLog, StopControl, write_json_atomic
from trainer.engine.loader import make_loader
from trainer.engine.predict import nll, predict_loader
from trainer.models.base import ModelAdapter
from trainer.rundir import ENGINE_META, FoldDir

BEST_SNAPSHOT = "best.safetensors"  # in last/: the best-so-far weights, so a resumed fold still ends on its best epoch
EMA_SNAPSHOT = "ema.safetensors"  # in last/: the moving average of the weights (train.ema_decay)


@dataclass
class FitResult:
    state: str  # "finished" | "early_stopped" | "stopped"
    epochs: int = 0  # epochs completed
    global_step: int = 0
    best_epoch: int | None = None
    best_val_loss: float | None = None
    train_time_s: float = 0.0  # time inside the training steps (no validation or checkpointing)
    train_images: int = 0
    resumed: bool = False
    history: list[dict] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.train_images / self.train_time_s if self.train_time_s > 0 else float("nan")


# --- setup ---------------------------------------------------------------------------------------------
def resolve_mixed_precision(value: str) -> str:
    if value != "auto":
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def make_accelerator(train: TrainConfig, cpu: bool = False):
    from accelerate import Accelerator

    mp = "no" if cpu else resolve_mixed_precision(train.mixed_precision)
    if mp != "no" and not torch.cuda.is_available():
        mp = "no"  # bf16/fp16 autocast is for GPUs; on CPU it is slower and changes results
    return Accelerator(mixed_precision=mp, gradient_accumulation_steps=max(1, train.grad_accum), cpu=cpu)


def build_optimizer(train: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if not params:
        raise ValueError("the model has no trainable parameters")
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=0.9, weight_decay=train.weight_decay)
    if not any(p.is_cuda for p in params) and not torch.cuda.is_available():
        # bitsandbytes' 8-bit / paged optimisers are CUDA kernels: the same config still runs on a CPU.
        print(f"notice: optimizer {train.optimizer!r} needs a CUDA GPU; using plain AdamW on this CPU", flush=True)
        return torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise ValueError(
            f"optimizer {train.optimizer!r} needs bitsandbytes (Linux + CUDA); use train.optimizer=adamw"
        ) from None
    cls = bnb.optim.PagedAdamW8bit if train.optimizer == "paged_adamw8bit" else bnb.optim.AdamW8bit
    return cls(params, lr=train.lr, weight_decay=train.weight_decay)


def lr_lambda(train: TrainConfig, total_steps: int):
    """Linear warm-up then cosine / step decay, as a factor of the base lr. Written out (3 lines) rather
    than imported from transformers so the CNN path does not load it."""
    warmup = int(round(train.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if train.scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        if train.scheduler == "step":
            return 0.1 ** int(progress >= 0.5) * 0.1 ** int(progress >= 0.75)
        return 1.0

    return factor


def memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:  # resident set size of this process (Linux)
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


# --- training ------------------------------------------------------------------------------------------
def _no_training(
    adapter,
    val_ds,
    train: TrainConfig,
    accelerator,
    best_dir: Path,
    events: EventLog,
    num_workers: int,
    progress: bool,
    desc: str,
    checkpoint_meta: dict | None,
) -> FitResult:
    """A model with nothing to train (a zero-shot VLM): validate once and save it as the fold's checkpoint."""
    from trainer.metrics import binary_or_multiclass_quick

    adapter.module.to(accelerator.device)
    val = {"val_loss": None, "val_accuracy": None, "val_auc": None}
    if val_ds is not None and len(val_ds):
        loader = accelerator.prepare(
            make_loader(val_ds, adapter, train.batch_size, train=False, num_workers=num_workers)
        )
        probs, targets, _ = predict_loader(adapter, loader, accelerator, progress=progress, desc=f"{desc} validate")
        quick = binary_or_multiclass_quick(targets, probs)
        val = {"val_loss": nll(probs, targets), "val_accuracy": quick["accuracy"], "val_auc": quick["roc_auc"]}
    if accelerator.is_main_process:
        adapter.save(best_dir)
        write_json_atomic(best_dir / ENGINE_META, {**(checkpoint_meta or {}), "epoch": None, "global_step": 0, **val})
    events.emit("epoch", epoch=0, train_loss=None, **val, best=True, trained=False)
    return FitResult(
        "finished", best_val_loss=val["val_loss"], history=[{"epoch": 0, "train_loss": None, **val, "best": True}]
    )


@dataclass
class FitProgress:
    """The loop's counters: saved as ``last/trainer_state.json`` with every resume checkpoint and restored from it."""

    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch done (a resumed epoch skips them)
    global_step: int = 0  # optimiser steps
    best_val_loss: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0  # epochs since the best one (early stopping)
    history: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0
    train_images: int = 0
    done: bool = False
    state: str = "running"

    @classmethod
    def from_dict(cls, data: dict) -> FitProgress:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def fit(
    adapter: ModelAdapter,
    train_ds: Dataset,
    val_ds: Dataset | None,
    train: TrainConfig,
    *,
    accelerator,
    out_dir: str | Path,
    events: EventLog | None = None,
    stop: StopControl | None = None,
    seed: int = 42,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "train",
    checkpoint_meta: dict | None = None,
) -> FitResult:
    """Train ``adapter`` on ``train_ds`` choosing the best epoch on ``val_ds`` (lowest NLL); the module ends
    holding the best weights, saved to ``out_dir/best`` with ``adapter.save``. Resumes from ``out_dir/last``."""
    fold = FoldDir(Path(out_dir))
    events = events or EventLog(None)
    stop = stop or StopControl()
    torch.manual_seed(seed)
    if not any(p.requires_grad for p in adapter.module.parameters()):
        return _no_training(
            adapter, val_ds, train, accelerator, fold.best, events, num_workers, progress, desc, checkpoint_meta
        )
    run = _FitRun(adapter, train_ds, val_ds, train, accelerator, fold, events, stop, seed, num_workers, progress, desc)
    run.checkpoint_meta = checkpoint_meta
    state = "finished"
    while run.more_epochs():
        epoch = run.p.epoch
        train_loss = run.train_one_epoch()
        if train_loss is None:  # a stop request inside the epoch
            run.checkpoint("stopped")
            return run.stopped(epoch)
        with run.evaluated_weights():  # the moving average, when train.ema_decay: validated, kept as best
            val = run.validate()
            improved = run.keep_best(epoch, val)
        run.end_epoch(epoch, train_loss, val, improved=improved)
        if train.early_stopping_patience and run.p.bad_epochs >= train.early_stopping_patience:
            state = "early_stopped"
            break
        if run.more_epochs():
            run.checkpoint("running")
            if run.stop_requested():  # asked during validation: end here, the epoch is saved
                return run.stopped(epoch)
    return run.finish(state)


class _FitRun:
    """One fold's training as named steps (``train_one_epoch``, ``validate``, ``keep_best``, ``checkpoint``) over
    the prepared module, optimiser, schedule and ``FitProgress``; ``fit`` is the loop over them."""

    def __init__(
        self, adapter, train_ds, val_ds, train, accelerator, fold, events, stop, seed, num_workers, progress, desc
    ):
        self.adapter, self.train, self.accelerator = adapter, train, accelerator
        self.fold, self.events, self.stop = fold, events, stop
        self.progress, self.desc, self.checkpoint_meta = progress, desc, None
        self.main = accelerator.is_main_process
        self.module = adapter.module
        self.optimizer = build_optimizer(train, [p for p in self.module.parameters() if p.requires_grad])
        train_loader = make_loader(
            train_ds,
            adapter,
            train.batch_size,
            train=True,
            seed=seed,
            num_workers=num_workers,
            balance=train.balance_classes,
        )
        val_loader = (
            make_loader(val_ds, adapter, train.batch_size, train=False, num_workers=num_workers)
            if val_ds is not None and len(val_ds)
            else None
        )
        self.prepared, self.optimizer, self.train_loader = accelerator.prepare(
            self.module, self.optimizer, train_loader
        )
        self.val_loader = accelerator.prepare(val_loader) if val_loader is not None else None
        adapter.prepared_module = self.prepared
        steps_per_epoch = max(1, len(self.train_loader) // max(1, train.grad_accum))
        self.total_steps = train.epochs * steps_per_epoch
        if train.max_steps:
            self.total_steps = min(self.total_steps, train.max_steps)
        # Not prepared: accelerate would step it once per process; it follows optimiser steps here.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            getattr(self.optimizer, "optimizer", self.optimizer), lr_lambda(train, self.total_steps)
        )
        # Multi-process runs agree on a stop only every log_every batches (the check is a collective).
        self.check_every = 1 if accelerator.num_processes == 1 else max(1, train.log_every)
        self.p = FitProgress()
        self.best_snapshot: dict[str, torch.Tensor] | None = None
        self.ema = WeightEMA(self.module, train.ema_decay) if train.ema_decay else None
        self.resumed = False
        last = fold.last
        if read_counters(last) is not None:
            self.p = FitProgress.from_dict(load_resume_state(last, self.module, self.optimizer, self.scheduler))
            if (last / BEST_SNAPSHOT).exists():
                self.best_snapshot = load_file(str(last / BEST_SNAPSHOT))
            if self.ema is not None and (last / EMA_SNAPSHOT).exists():
                self.ema.load_state_dict(load_file(str(last / EMA_SNAPSHOT)))
            self.resumed = True
            events.emit("resume", epoch=self.p.epoch, step=self.p.global_step, batch_in_epoch=self.p.batch_in_epoch)

    def more_epochs(self) -> bool:
        p = self.p
        return not p.done and p.epoch < self.train.epochs and p.global_step < self.total_steps

    def train_one_epoch(self) -> float | None:
        """The rest of the current epoch (a resumed one skips the batches it did); its mean training loss, or
        None when a stop was requested inside it."""
        from tqdm.auto import tqdm

        acc, p, epoch = self.accelerator, self.p, self.p.epoch
        self.module.train()
        self.train_loader.set_epoch(epoch)
        skip = p.batch_in_epoch
        loader = acc.skip_first_batches(self.train_loader, skip) if skip else self.train_loader
        bar = tqdm(
            loader,
            total=len(self.train_loader),
            initial=skip,
            desc=f"{self.desc} epoch {epoch + 1}/{self.train.epochs}",
            disable=not (self.progress and acc.is_local_main_process),
            leave=False,
            mininterval=1.0,
        )
        window = _StepWindow(acc.device)
        epoch_loss, epoch_batches = torch.zeros((), device=acc.device), 0
        stopped = False
        t0 = time.perf_counter()
        for batch, y, _ in bar:
            loss = self.train_step(batch)
            n = int(y.shape[0]) * acc.num_processes
            p.batch_in_epoch += 1
            p.train_images += n
            window.add(loss, n)
            epoch_loss += loss
            epoch_batches += 1
            if acc.sync_gradients:  # an optimiser step (the last micro-batch of an accumulation)
                self.scheduler.step()
                p.global_step += 1
                if self.ema is not None:
                    self.ema.update(self.module)
                if p.global_step % max(1, self.train.log_every) == 0:
                    bar.set_postfix(loss=f"{self.log_step(epoch, window):.4f}", refresh=False)
                if p.global_step >= self.total_steps:
                    break
                every = self.train.checkpoint_every
                if every and p.global_step % every == 0 and p.batch_in_epoch < len(self.train_loader):
                    # Mid-epoch resume state: a kill from here on loses at most ``every`` steps. Every process
                    # reaches the same step, so the collective save inside stays in step.
                    p.train_time_s += time.perf_counter() - t0
                    self.checkpoint("running")
                    t0 = time.perf_counter()
            if p.batch_in_epoch % self.check_every == 0 and self.stop_requested():
                stopped = True
                break
        bar.close()
        p.train_time_s += time.perf_counter() - t0
        if stopped:
            return None
        return acc.reduce(epoch_loss, reduction="mean").item() / max(1, epoch_batches)

    def train_step(self, batch) -> torch.Tensor:
        acc = self.accelerator
        with acc.accumulate(self.prepared):
            with acc.autocast():
                loss = self.adapter.loss(batch)
            acc.backward(loss)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach().float()

    def log_step(self, epoch: int, window: _StepWindow) -> float:
        """A ``step`` event over the batches since the last one; returns their mean loss."""
        mean_loss = self.accelerator.reduce(window.loss, reduction="mean").item() / window.n
        self.events.emit(
            "step",
            epoch=epoch,
            step=self.p.global_step,
            loss=mean_loss,
            lr=self.scheduler.get_last_lr()[0],
            images_per_s=round(window.images_per_s(), 2),
            mem_mb=round(memory_mb(), 1),
        )
        window.reset()
        return mean_loss

    def evaluated_weights(self):
        """The weights an epoch is judged and kept by: the moving average (``train.ema_decay``) or the raw ones."""
        return self.ema.applied(self.module) if self.ema is not None else nullcontext()

    def validate(self) -> dict:
        from trainer.metrics import binary_or_multiclass_quick

        if self.val_loader is None:
            return {"val_loss": None, "val_accuracy": None, "val_auc": None}
        probs, targets, _ = predict_loader(
            self.adapter, self.val_loader, self.accelerator, progress=self.progress, desc=f"{self.desc} validate"
        )
        quick = binary_or_multiclass_quick(targets, probs)
        return {"val_loss": nll(probs, targets), "val_accuracy": quick["accuracy"], "val_auc": quick["roc_auc"]}

    def keep_best(self, epoch: int, val: dict) -> bool:
        """A better validation loss (or none to compare) makes this epoch the best: kept in memory, saved to best/."""
        p = self.p
        improved = val["val_loss"] is None or p.best_val_loss is None or val["val_loss"] < p.best_val_loss - 1e-6
        if not improved:
            p.bad_epochs += 1
            return False
        p.best_val_loss, p.best_epoch, p.bad_epochs = val["val_loss"], epoch, 0
        self.best_snapshot = trainable_state(self.module)
        self.accelerator.wait_for_everyone()
        if self.main:
            self.adapter.save(self.fold.best)
            write_json_atomic(
                self.fold.best / ENGINE_META,
                {**(self.checkpoint_meta or {}), "epoch": epoch, "global_step": p.global_step, **val},
            )
        return True

    def end_epoch(self, epoch: int, train_loss: float, val: dict, *, improved: bool) -> None:
        row = {"epoch": epoch, "train_loss": train_loss, **val, "best": improved}
        self.p.history.append(row)
        self.events.emit("epoch", **row)
        self.p.epoch, self.p.batch_in_epoch = epoch + 1, 0

    def checkpoint(self, state: str) -> None:
        """The resume state in last/ (with the best-so-far weights, so a resumed fold still ends on its best)."""
        self.p.state = state
        self.accelerator.wait_for_everyone()
        if self.main:
            last = self.fold.last
            save_resume_state(last, self.module, self.optimizer, self.scheduler, dataclasses.asdict(self.p))
            if self.best_snapshot is not None:
                save_file(self.best_snapshot, str(last / BEST_SNAPSHOT))
            if self.ema is not None:
                save_file(self.ema.state_dict(), str(last / EMA_SNAPSHOT))

    def stop_requested(self) -> bool:
        flag = self.stop.requested
        if self.accelerator.num_processes > 1:  # every process must stop at the same step
            t = torch.tensor([1.0 if flag else 0.0], device=self.accelerator.device)
            flag = bool(self.accelerator.reduce(t, reduction="sum").item() > 0)
        return flag

    def stopped(self, epoch: int) -> FitResult:
        self.events.emit("stopped", epoch=epoch, step=self.p.global_step, reason=self.stop.reason)
        return self.result("stopped")

    def finish(self, state: str) -> FitResult:
        """End on the best epoch's weights (what best/ holds) and mark the fold's training done."""
        if self.best_snapshot is not None:
            load_trainable_state(self.module, self.best_snapshot)
        if not self.p.done:
            self.p.done = True
            self.checkpoint(state)
        else:  # resumed after its training had ended: report how it ended
            state = self.p.state or state
        self.module.eval()
        return self.result(state)

    def result(self, state: str) -> FitResult:
        p = self.p
        return FitResult(
            state,
            p.epoch,
            p.global_step,
            p.best_epoch,
            p.best_val_loss,
            p.train_time_s,
            p.train_images,
            self.resumed,
            p.history,
        )


class _StepWindow:
    """Loss and throughput over the batches between two ``step`` events."""

    def __init__(self, device):
        self.loss = torch.zeros((), device=device)
        self.reset()

    def reset(self) -> None:
        self.loss.zero_()
        self.n, self.images, self.t0 = 0, 0, time.perf_counter()

    def add(self, loss: torch.Tensor, images: int) -> None:
        self.loss += loss
        self.n += 1
        self.images += images

    def images_per_s(self) -> float:
        return self.images / max(time.perf_counter() - self.t0, 1e-9)
