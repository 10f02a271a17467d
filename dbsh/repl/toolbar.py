"""The prompt and the bottom toolbar: backend, database, transaction state, read-only flag."""

from __future__ import annotations


def prompt_text(shell) -> str:
    """`shop> `, `shop*> ` inside a transaction, `shop(ro)> ` when read-only."""
    name = shell.database_label()
    marks = ("*" if shell.in_transaction() else "") + ("(ro)" if shell.readonly else "")
    return f"{name}{marks}> "


def continuation(shell):
    def show(width: int, line_number: int, is_soft_wrap: bool) -> str:
        return "." * max(width - 2, 0) + "> " if width > 2 else "> "
    return show


def toolbar(shell):
    def show():
        parts = [("class:bottom-toolbar.backend", f" {shell.backend_label()} ")]
        if shell.info.get("database"):
            parts.append(("class:bottom-toolbar", f" db: {shell.database_label()} "))
        if shell.session.capabilities.transactions:
            parts.append(("class:bottom-toolbar.transaction" if shell.in_transaction() else "class:bottom-toolbar",
                          " transaction open " if shell.in_transaction() else " autocommit "))
        if shell.readonly:
            parts.append(("class:bottom-toolbar.readonly", " read-only "))
        expanded = " expanded auto" if shell.expanded == "auto" else " expanded" if shell.expanded else ""
        parts.append(("class:bottom-toolbar", f" {shell.fmt}{expanded} "))
        if shell.timing:
            parts.append(("class:bottom-toolbar", " timing "))
        if shell.dropped:
            parts.append(("class:bottom-toolbar.readonly", " disconnected "))
        hint = _hint(shell)
        if hint:
            parts.append(("class:bottom-toolbar.hint", f" {hint} "))
        else:
            parts.append(("class:bottom-toolbar", " \\? help  \\q quit "))
        return parts
    return show


def _hint(shell) -> str | None:
    """The arguments of the command being typed (Redis), from the statement buffer."""
    from dbsh.repl.completer import argument_hint

    session = shell.prompt_session
    if session is None:
        return None
    try:
        return argument_hint(shell, session.default_buffer.document.text_before_cursor)
    except Exception:  # noqa: BLE001 - the toolbar must never fail
        return None


STYLE = {
    "bottom-toolbar.hint": "bg:#303030 #ffd75f noreverse",
    "bottom-toolbar": "bg:#303030 #d0d0d0 noreverse",
    "bottom-toolbar.backend": "bg:#005f87 #ffffff bold noreverse",
    "bottom-toolbar.transaction": "bg:#875f00 #ffffff bold noreverse",
    "bottom-toolbar.readonly": "bg:#870000 #ffffff bold noreverse",
}
