"""Dashboard tab: per-magnification metrics of finished runs beside the paper's numbers."""
import gradio as gr


def build(ctx) -> None:
    gr.Markdown("### Dashboard\nPer-magnification accuracy, precision, recall, F1 and ROC-AUC (mean ± std over folds) "
                "for finished runs, beside the paper's figures. *Coming in the Dashboard issue.*")
