"""End to end in a real terminal: `dbsh` on the embedded default inside tmux, keys sent with
send-keys, the screen read with capture-pane, the data checked with sqlite3."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (scripts/install-test-deps installs it)")


class Terminal:
    """A 100x30 tmux pane on a private tmux server."""

    def __init__(self, tmp_path, command: list[str], env: dict[str, str], *, remain: bool = False):
        """``remain``: the pane stays when the command ends, so its last words can be read."""
        self.socket = str(tmp_path / "tmux.sock")
        self.env = {**os.environ, **env, "TERM": "xterm-256color"}
        keep = [";", "set-option", "-g", "remain-on-exit", "on"] if remain else []
        self.started = self.tmux("new-session", "-d", "-s", "dbsh", "-x", "100", "-y", "30", shlex.join(command),
                                 *keep)

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.socket, *args], env=self.env, capture_output=True, text=True)

    def type(self, text: str) -> None:
        # tmux reads a trailing ';' as its own command separator: send that one as a hex key
        self.tmux("send-keys", "-t", "dbsh", "-l", text.rstrip(";"))
        if text.endswith(";"):
            self.tmux("send-keys", "-t", "dbsh", "-H", "3b")

    def keys(self, *names: str) -> None:
        self.tmux("send-keys", "-t", "dbsh", *names)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "dbsh").stdout

    def wait_for(self, text: str, deadline: float = 60) -> str:
        """The screen once it shows text (fails with the screen if it never does)."""
        end = time.monotonic() + deadline
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > end:
                state = self.tmux("list-panes", "-t", "dbsh", "-F", "#{pane_dead} #{pane_dead_status}")
                raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}\n(tmux: started "
                                     f"{self.started.returncode} {self.started.stderr.strip()!r}; pane dead, "
                                     f"status: {state.stdout.strip() or state.stderr.strip()!r})")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "dbsh").returncode == 0

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "PAGER": "less -SRXF"}
    term = Terminal(tmp_path, [sys.executable, "-m", "dbsh"], env)
    yield term
    term.close()


def test_a_person_at_the_embedded_default(terminal, tmp_path):
    terminal.wait_for("dbsh.db>")
    screen = terminal.wait_for("autocommit")                          # the bottom toolbar
    assert "connected to SQLite" in screen and "Type \\? for help, \\q to quit." in screen
    assert screen.rstrip().splitlines()[-1].startswith(" SQLite  db: dbsh.db  autocommit  table")

    terminal.type("create table people (name text,")
    terminal.keys("Enter")
    terminal.type("age int);")
    terminal.keys("Enter")
    terminal.wait_for("done")
    terminal.type("insert into people values ('Ann', 34), ('Bob', 20);")
    terminal.keys("Enter")
    terminal.wait_for("2 rows affected")

    # completion from the live schema: Tab finishes the table name
    terminal.type("select name, age from peo")
    terminal.wait_for("people  collection")      # the menu opens while typing; Tab picks the entry
    terminal.keys("Tab")
    terminal.wait_for("select name, age from people")
    terminal.type(" order by age;")
    terminal.keys("Enter")
    screen = terminal.wait_for("(2 rows)")
    lines = [line.rstrip() for line in screen.splitlines()]
    at = lines.index(" name   age")
    assert lines[at:at + 5] == [" name   age", "────────────", " Bob    20", " Ann    34", "(2 rows)"]

    # an open transaction shows in the prompt and the toolbar
    terminal.type("\\begin")
    terminal.keys("Enter")
    terminal.wait_for("dbsh.db*>")
    terminal.wait_for("transaction open")
    terminal.type("\\rollback")
    terminal.keys("Enter")

    # a destructive statement asks first
    terminal.type("delete from people;")
    terminal.keys("Enter")
    terminal.wait_for("delete from people: DELETE without WHERE changes every row. Run it? [y/N]")
    terminal.type("n")
    terminal.keys("Enter")
    terminal.wait_for("not run")

    # a long result goes through the pager (less -SRXF): q returns to the prompt
    terminal.keys("C-l")
    terminal.type("with recursive c(x) as (select 1 union all select x + 1 from c where x < 100) select x from c;")
    terminal.keys("Enter")
    screen = terminal.wait_for(" 25")
    assert "(100 rows)" not in screen
    terminal.keys("G")
    terminal.wait_for("(100 rows)")
    terminal.keys("q")
    terminal.type("select 'back' as here;")
    terminal.keys("Enter")
    terminal.wait_for("(1 row)")

    # Ctrl-C clears the line and keeps the shell; Ctrl-D quits
    terminal.type("drop table people")
    terminal.keys("C-c")
    end = time.monotonic() + 60      # a person presses Ctrl-D once the cleared prompt shows
    while [line.rstrip() for line in terminal.screen().splitlines() if line.strip()][-2:-1] != ["dbsh.db>"]:
        assert time.monotonic() < end, terminal.screen()
        time.sleep(0.05)
    # (a key sent in the instant between two prompts can reach the terminal before the new prompt reads
    # it: press Ctrl-D again, as a person would, if the shell is still there a moment later)
    end = time.monotonic() + 60
    while terminal.alive():
        assert time.monotonic() < end, terminal.screen()
        terminal.keys("C-d")
        for _ in range(40):
            if not terminal.alive():
                break
            time.sleep(0.05)
    assert not terminal.alive()
    with sqlite3.connect(tmp_path / "data" / "dbsh" / "dbsh.db") as conn:
        assert conn.execute("select name, age from people order by name").fetchall() == [("Ann", 34), ("Bob", 20)]


def test_ctrl_c_cancels_a_long_sqlite_statement(terminal):
    terminal.wait_for("dbsh.db>")
    # one statement that never ends: sqlite3 is inside a single C call, which Ctrl-C must interrupt
    terminal.type("with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c;")
    terminal.keys("Enter")
    # a Ctrl-C that arrives before the terminal leaves the prompt's raw mode is read as a key:
    # press it again, as a person would, until the statement is cancelled
    end = time.monotonic() + 60
    while "cancelled" not in terminal.screen():
        assert time.monotonic() < end, terminal.screen()
        terminal.keys("C-c")
        time.sleep(0.3)
    terminal.type("select 'still here' as s;")
    terminal.keys("Enter")
    screen = terminal.wait_for("(1 row)")
    assert " still here" in screen


@pytest.fixture
def shop(tmp_path):
    """A SQLite file with a people table, and a terminal factory for dbsh on it."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table people (id integer primary key, name text, age int)")
        conn.executemany("insert into people (name, age) values (?, ?)", [("Ann", 34), ("Bob", 20), ("Cy", 51)])
    return path


def open_terminal(tmp_path, *args: str, env: dict | None = None) -> Terminal:
    base = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PAGER": "less -SRXF"}
    return Terminal(tmp_path, [sys.executable, "-m", "dbsh", *args], {**base, **(env or {})})


def test_ctrl_r_finds_an_earlier_statement(shop, tmp_path):
    term = open_terminal(tmp_path, "-u", f"sqlite:///{shop}")
    try:
        term.wait_for("shop.db>")
        term.type("select name from people where id = 3;")
        term.keys("Enter")
        term.wait_for(" Cy")
        term.type("select name from people where id = 1;")
        term.keys("Enter")
        term.wait_for(" Ann")
        term.keys("C-l")
        term.keys("C-r")
        for ch in "id = 3":        # typed as a person types: one key at a time
            term.type(ch)
        screen = term.wait_for("I-search backward: id = 3")
        assert "shop.db> select name from people where id = 3;" in screen
        term.keys("Enter")         # takes the match
        term.keys("Enter")         # runs it
        screen = term.wait_for("(1 row)")
        assert " Cy" in screen and " Ann" not in screen
    finally:
        term.close()


# -- the power commands, as a person uses them ----------------------------------------------------

def run_line(term: Terminal, text: str, until: str) -> str:
    term.type(text)
    term.keys("Enter")
    return term.wait_for(until)


def test_watch_until_ctrl_c_and_timing(shop, tmp_path):
    term = open_terminal(tmp_path, "-u", f"sqlite:///{shop}")
    try:
        term.wait_for("shop.db>")
        run_line(term, "\\timing on", "timing is on")
        screen = run_line(term, "select count(*) as n from people;", "Time: ")
        assert screen.count("Time: ") == 1                 # \timing on did not time itself
        run_line(term, "\\timing off", "timing is off")
        run_line(term, "\\watch 0.2", "run 3 at")          # counted runs, no clock in the assertion
        term.keys("C-c")
        term.keys("C-l")
        screen = run_line(term, "select 'after' as w;", " after")
        assert "shop.db>" in screen
    finally:
        term.close()


def test_output_to_files_named_queries_and_expanded_auto(shop, tmp_path):
    out, tee = tmp_path / "out.txt", tmp_path / "tee.txt"
    term = open_terminal(tmp_path, "-u", f"sqlite:///{shop}")
    try:
        term.wait_for("shop.db>")
        run_line(term, f"\\o {out}", "results go to")
        run_line(term, "select name from people where id = 1;", "shop.db>")
        run_line(term, "\\o", "results go to the screen")
        run_line(term, f"\\tee {tee}", "also written to")
        run_line(term, "select name from people where id = 2;", " Bob")
        run_line(term, "\\tee", "screen only")
        assert out.read_text().split() == ["name", "──────", "Ann", "(1", "row)"]
        assert tee.read_text().split() == ["name", "──────", "Bob", "(1", "row)"]
        assert " Ann" not in term.screen()
        term.keys("C-l")
        run_line(term, "\\ns by_age select name from people where age > $1 order by age;", "saved 'by_age'")
        screen = run_line(term, "\\n by_age 30", "(2 rows)")
        assert " Ann" in screen and " Cy" in screen and " Bob" not in screen
        run_line(term, "\\n", "by_age")
        run_line(term, "\\nd by_age", "deleted 'by_age'")
        term.keys("C-l")
        run_line(term, "\\x auto", "expanded display is auto")
        screen = run_line(term, "select name, age from people where id = 1;", "(1 row)")
        assert " name   age" in screen                     # fits: a table
        wide = "select " + ", ".join(f"'{'w' * 12}' as column_{i}" for i in range(7)) + ";"
        term.keys("C-l")
        screen = run_line(term, wide, "(1 row)")
        assert "row 1" in screen and " column_6   wwwwwwwwwwww" in screen     # wider than 100 columns
    finally:
        term.close()


def test_databases_patterns_references_and_help(shop, tmp_path):
    with sqlite3.connect(shop) as conn:
        conn.execute("create table pets (id integer primary key, owner int references people(id), kind text)")
    term = open_terminal(tmp_path, "-u", f"sqlite:///{shop}")
    try:
        term.wait_for("shop.db>")
        screen = run_line(term, "\\l", "(1 row)")
        assert " main " in screen and str(shop) in screen
        term.keys("C-l")
        screen = run_line(term, "\\dt pe*", "(2 rows)")
        assert " people" in screen and " pets" in screen
        term.keys("C-l")
        screen = run_line(term, "\\d pets", "(3 rows)")
        assert "people(id)" in screen and "references" in screen
        term.keys("C-l")
        run_line(term, "\\?", "\\q  (\\quit)")
        term.keys("C-l")
        run_line(term, "\\? ", "This help")
        screen = term.tmux("capture-pane", "-p", "-S", "-200", "-t", "dbsh").stdout
        for name in ("(\\dt)", "(\\d)", "(\\c)", "(\\l)", "\\watch", "\\o [FILE]", "\\tee", "\\ns NAME QUERY"):
            assert name in screen, name
    finally:
        term.close()


def test_alias_and_join_completion_and_a_trigger_typed_over_lines(shop, tmp_path):
    with sqlite3.connect(shop) as conn:
        conn.execute("create table pets (id integer primary key, owner int references people(id), kind text)")
    term = open_terminal(tmp_path, "-u", f"sqlite:///{shop}")
    try:
        term.wait_for("shop.db>")
        term.type("select * from pets t join people p on ")
        term.keys("Tab")
        term.wait_for("p.id = t.owner")
        term.keys("C-c")
        term.type("select t.k")
        term.wait_for("kind")                                  # no FROM yet: any table's kind
        term.keys("C-c")
        for line in ("create trigger counted after insert on pets", "begin",
                     "  update people set age = age + 1 where id = new.owner;", "end;"):
            term.type(line)
            term.keys("Enter")
        term.wait_for("done")
        run_line(term, "insert into pets (owner, kind) values (1, 'cat');", "1 row affected")
    finally:
        term.close()
    with sqlite3.connect(shop) as conn:
        assert conn.execute("select age from people where id = 1").fetchall() == [(35,)]
