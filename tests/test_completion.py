"""Shell completion as a user's shell runs it: the script `dbsh --show-completion bash` prints is
sourced in a real bash, whose completion function is called as bash calls it (COMP_WORDS,
COMP_CWORD); fish completes through `complete -C`; zsh's side of the protocol is checked without zsh
(scripts/test installs bash and fish, not zsh)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dbshtest import dbsh

BIN = str(Path(sys.executable).parent)   # the venv's bin: the `dbsh` the scripts call


@pytest.fixture
def shell_env(dbsh_env, tmp_path, sqlite_url):
    """An environment with `dbsh` on PATH, a home of its own, and two saved profiles."""
    for name in ("local", "lab"):
        assert dbsh("connect", sqlite_url, "--save", name).code == 0
    home = tmp_path / "home"
    home.mkdir()
    return {**dbsh_env, "PATH": BIN + os.pathsep + dbsh_env.get("PATH", ""), "HOME": str(home)}


def bash(script: str, env: dict) -> list[str]:
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def complete_in_bash(words: list[str], env: dict) -> list[str]:
    """What bash offers for the last word, through the function the generated script registered."""
    array = " ".join(f"'{w}'" for w in words)
    return bash(f'source <(dbsh --show-completion bash)\n'
                f'COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n'
                f'"$(complete -p dbsh | sed "s/.*-F \\([^ ]*\\) dbsh$/\\1/")" dbsh\n'
                f'printf "%s\\n" "${{COMPREPLY[@]}}"', env)


def test_bash_script_registers_a_completion_function(shell_env):
    assert bash("source <(dbsh --show-completion bash)\ncomplete -p dbsh", shell_env) == [
        "complete -o default -F _dbsh_completion dbsh"]


def test_bash_completes_command_names(shell_env):
    assert complete_in_bash(["dbsh", "fi"], shell_env) == ["find"]
    assert complete_in_bash(["dbsh", "mig"], shell_env) == ["migrate"]
    assert complete_in_bash(["dbsh", "migrate", "in"], shell_env) == ["init"]
    assert sorted(complete_in_bash(["dbsh", "co"], shell_env)) == ["collections", "connect", "copy", "count"]


def test_bash_completes_saved_profile_names(shell_env):
    assert complete_in_bash(["dbsh", "-c", "lo"], shell_env) == ["local"]
    assert complete_in_bash(["dbsh", "connect", "l"], shell_env) == ["lab", "local"]
    assert complete_in_bash(["dbsh", "--conn", "x"], shell_env) in ([], [""])   # none saved starts with x


def test_install_completion_bash_is_sourced_by_a_new_shell(shell_env):
    run = subprocess.run(["dbsh", "--install-completion", "bash"], env=shell_env, capture_output=True, text=True)
    home = Path(shell_env["HOME"])
    assert (run.returncode, run.stdout) == (0, f"bash completion installed in {home / '.bash_completions/dbsh.sh'}; "
                                               "it takes effect in new shells\n")
    assert "source" in (home / ".bashrc").read_text() and (home / ".bash_completions" / "dbsh.sh").is_file()
    assert bash("source ~/.bashrc\ncomplete -p dbsh", shell_env) == ["complete -o default -F _dbsh_completion dbsh"]


def test_show_completion_takes_the_shell_by_name(shell_env):
    scripts = {}
    for shell in ("bash", "zsh", "fish"):
        run = subprocess.run(["dbsh", "--show-completion", shell], env=shell_env, capture_output=True, text=True)
        assert run.returncode == 0 and run.stderr == ""
        scripts[shell] = run.stdout
    assert scripts["bash"].startswith("_dbsh_completion() {") and "_DBSH_COMPLETE=complete_bash" in scripts["bash"]
    assert scripts["zsh"].startswith("#compdef dbsh\n") and "_DBSH_COMPLETE=complete_zsh" in scripts["zsh"]
    assert scripts["fish"].startswith("complete --command dbsh ") and "_DBSH_COMPLETE=complete_fish" in scripts["fish"]


@pytest.mark.skipif(shutil.which("fish") is None,
                    reason="fish is not installed (scripts/install-test-deps installs it)")
def test_fish_completes_commands_and_profiles(shell_env):
    proc = subprocess.run(["fish", "--no-config", "-c", 'dbsh --show-completion fish | source; complete -C "dbsh mig"; '
                           'complete -C "dbsh -c lo"; complete -C "dbsh connect l"'],
                          env=shell_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["migrate\tMigrations: Alembic for SQL; locked,...", "local", "lab", "local"]


def test_zsh_side_of_the_protocol(shell_env):
    """What the zsh script evals: an _arguments call listing the candidates."""
    def zsh_candidates(line: str) -> str:
        proc = subprocess.run(["dbsh"], env={**shell_env, "_DBSH_COMPLETE": "complete_zsh",
                                             "_TYPER_COMPLETE_ARGS": line}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert zsh_candidates("dbsh -c lo") == """_arguments '*: :(("local"))'"""
    assert zsh_candidates("dbsh fi") == """_arguments '*: :(("find":"Find documents matching a MongoDB-style..."))'"""


def test_without_a_shell_name_the_running_shell_is_used(shell_env):
    fish = shutil.which("fish")
    if fish:
        proc = subprocess.run([fish, "--no-config", "-c", "dbsh --show-completion"], env=shell_env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.startswith("complete --command dbsh "), proc.stderr
    proc = subprocess.run(["sh", "-c", "dbsh --show-completion; echo $?"], env=shell_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout == "2\n"
    assert proc.stderr == ("dbsh: error: cannot complete for this shell (sh) (name one: dbsh --show-completion "
                           "bash|zsh|fish)\n")
    proc = subprocess.run(["dbsh", "--install-completion", "tcsh"], env=shell_env, capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (2, "dbsh: error: no completion for 'tcsh' (name one: dbsh "
                                                 "--install-completion bash|zsh|fish)\n")
