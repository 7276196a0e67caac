"""One module per tab; each exposes ``build(ctx)`` and is called inside its ``gr.Tab``."""
