"""Every option and argument of the `openraft-fast` command says what it is, and a bare
`openraft-fast` is a usage error that prints the help."""
import argparse
import subprocess
import sys

from openraft_fast.cli.main import build_parser


def _undocumented(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _undocumented(sub, path + [name])
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            yield " ".join(path), action.option_strings or action.dest


def test_every_option_has_a_help_line():
    assert list(_undocumented(build_parser(), ["openraft-fast"])) == []


def test_the_walk_finds_an_option_without_help():
    p = argparse.ArgumentParser()
    p.add_argument("--documented", help="yes")
    p.add_argument("--bare")
    assert list(_undocumented(p, ["x"])) == [("x", ["--bare"])]


def test_a_bare_command_prints_the_help_and_exits_2():
    p = subprocess.run([sys.executable, "-m", "openraft_fast.cli"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "usage: openraft-fast" in p.stderr and "serve" in p.stderr
