"""Predict & Explain tab: CNN and VLM predictions side by side with Grad-CAM / attention overlays."""
import gradio as gr


def build(ctx) -> None:
    gr.Markdown("### Predict & explain\nUpload H&E patches and compare a CNN and a vision-language model side by side, "
                "with Grad-CAM and attention maps. *Coming in the Predict issue.*")
