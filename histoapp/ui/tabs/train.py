"""Train tab: launch, watch, stop and resume CNN / VLM runs as separate processes."""
import gradio as gr


def build(ctx) -> None:
    gr.Markdown("### Train\nLaunch CNN or LoRA runs of the trainer on this machine and follow their loss curves live. "
                "*Coming in the Train tab issue.* Meanwhile the CLI works: `python -m trainer --help`.")
