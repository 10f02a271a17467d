"""Key bindings on top of prompt_toolkit's emacs or vi set (chosen by `keys` in [repl] config)."""

from __future__ import annotations

from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import has_focus
from prompt_toolkit.key_binding import KeyBindings


def bindings(shell) -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter", filter=has_focus(DEFAULT_BUFFER))
    def _enter(event):
        """Enter runs a complete statement and starts a new line in an unfinished one. The prompt is
        always multi-line (prompt_toolkit's layout cannot change while a Ctrl-R search is open), so
        this binding decides, from the statement buffer (never the search field)."""
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.complete_state = None       # Enter takes the chosen completion
            return
        if shell.input_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.newline(copy_margin=not event.app.paste_mode())

    @kb.add("c-space")
    def _complete(event):
        """Open the completion menu."""
        buffer = event.app.current_buffer
        if buffer.complete_state:
            buffer.complete_next()
        else:
            buffer.start_completion(select_first=False)

    @kb.add("escape", "enter")
    def _run_now(event):
        """Alt-Enter: run the buffer even without a terminator."""
        event.app.current_buffer.validate_and_handle()

    return kb
