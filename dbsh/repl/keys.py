"""Key bindings on top of prompt_toolkit's emacs or vi set (chosen by `keys` in [repl] config)."""

from __future__ import annotations

from prompt_toolkit.key_binding import KeyBindings


def bindings(shell) -> KeyBindings:
    kb = KeyBindings()

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
