"""What the app says when it refuses a request: one line to the user, nothing in the server's log."""

from __future__ import annotations

import gradio as gr


def refused(message: str, **kwargs) -> gr.Error:
    """A gr.Error for a request the app turns down (bad input, a limit, a model out of reach): Gradio would print
    each one's traceback in the server's log, as if it were a bug."""
    return gr.Error(message, print_exception=False, **kwargs)
