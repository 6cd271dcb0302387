"""Argument parsing shared by every `openraft-fast` command: one-line parse errors, HOST:PORT,
bounded numbers and comma-separated lists of them."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, List, Tuple


def _one_line_error(parser: argparse.ArgumentParser, message: str):
    print(f"{parser.prog}: error: {message} (see --help)", file=sys.stderr)
    sys.exit(2)


class OneLineParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line on stderr (exit 2), never the usage block."""

    def error(self, message: str):  # type: ignore[override]
        _one_line_error(self, message)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a parser made by add_parser (whose class is the top-level one) one-line errors."""
    parser.error = lambda message: _one_line_error(parser, message)  # type: ignore[method-assign]
    return parser


def host_port(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def bounded(kind, low, *, inclusive: bool = True, what: str = "a number", high=None):
    """A parser of one `kind` value >= `low` (> `low` when not inclusive), finite, and at most
    `high` when given."""
    op = ">=" if inclusive else ">"

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(v) or (v < low if inclusive else v <= low):
            raise argparse.ArgumentTypeError(f"expected {what} {op} {low}, got {text!r}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"expected {what} <= {high}, got {text!r}")
        return v
    return parse


def int_list(least: int, what: str = "integers") -> Callable[[str], List[int]]:
    """A parser of comma-separated integers, each >= `least`, at least one."""
    one = bounded(int, least, what=what)

    def parse(text: str) -> List[int]:
        values = [one(x.strip()) for x in text.split(",") if x.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        return values
    return parse


# Node ids are integers >= 0.
id_list = int_list(0, "node ids")
