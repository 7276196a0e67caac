"""Trainer runs launched, watched, stopped and resumed as separate processes (the Train tab's back end)."""

from histoapp.runs.manager import LaunchRefused, RunInfo, RunManager

__all__ = ["RunManager", "RunInfo", "LaunchRefused"]
