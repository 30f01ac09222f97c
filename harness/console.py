"""The console every command prints through, and the one rule of how wide its output is laid out.

The width (``layout_width``): ``COLUMNS`` where it is set (at least ``MIN_WIDTH``), else the terminal's width, else
(a pipe, a log file) ``PIPE_WIDTH``. ``make_console`` builds the console with that width, so that everything it
prints — titles, notes, tables — wraps at the width the views lay their tables out for (``harness.leaderboard.
view_width``), and nothing is cut: ``COLUMNS=200 python -m harness leaderboard DIR > log`` lays out at 200 columns, a
plain pipe at 120.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from rich.console import Console

PIPE_WIDTH = 120  # a pipe or a log file without COLUMNS: wide enough for the usual columns, readable in an editor
MIN_WIDTH = 40  # a COLUMNS below it (COLUMNS=7) is taken as this: no table fits in less


def layout_width(is_terminal: bool, terminal_width: int, environ: Mapping[str, str] | None = None) -> int:
    """The width output is laid out for: ``COLUMNS`` where it is set to a number (at least ``MIN_WIDTH``), else
    ``terminal_width`` on a terminal, else ``PIPE_WIDTH``."""
    columns = (os.environ if environ is None else environ).get("COLUMNS", "").strip()
    if columns.isdigit():
        return max(MIN_WIDTH, int(columns))
    return terminal_width if is_terminal else PIPE_WIDTH


def make_console() -> Console:
    """The console every command prints through, ``layout_width`` wide (on a terminal without ``COLUMNS`` rich's own
    width, which follows the terminal when it is resized). Rich markup and emoji codes are off: what it prints are
    names, paths, datasets, genotypes and record fields that users and other machines chose, and ``[/x]``, ``[old]``
    or ``:smile:`` in them is printed as it is (a style is a ``rich.text.Text``, never markup in a string)."""
    console = Console(markup=False, emoji=False)
    width = layout_width(console.is_terminal, console.width)
    if console.is_terminal and width == console.width:
        return console
    return Console(width=width, markup=False, emoji=False)
