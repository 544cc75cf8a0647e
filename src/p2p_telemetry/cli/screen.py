"""Where the live views draw: redrawn in place to fit a terminal, or appended frame by frame to a pipe or file.

On a terminal the frame is cut to the terminal's width and height, read again at every frame (a
resized window is followed). With ``rich`` installed (the ``cli`` extra), rich's ``Live`` draws it;
without it, a plain fallback moves the cursor home and clears what the last frame left. On a pipe
the header is written once, then each frame's lines, then a blank line: nothing is redrawn, no
control sequence is written.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, TextIO

__all__ = ["Screen", "terminal_size"]

HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"


def terminal_size(out: TextIO) -> os.terminal_size:
    """The size of the terminal ``out`` writes to (80x24 when it cannot be told)."""
    try:
        return os.get_terminal_size(out.fileno())
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size((80, 24))


def fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` columns, with an ellipsis where it was cut."""
    return line if len(line) <= width else line[:max(0, width - 1)] + "…"


class Screen:
    """Draws frames (lists of lines) under a header, on a terminal or a pipe; ``rich=None`` uses it if installed."""

    def __init__(self, out: TextIO, header: str = "", *, tty: bool | None = None, rich: bool | None = None) -> None:
        self.out = out
        self.header = header
        self.tty = out.isatty() if tty is None else tty
        self._live: Any = None
        if self.tty and rich is not False:
            self._live = _rich_live(out)
            if self._live is None and rich:
                raise ValueError("rich is not installed (pip install 'p2p-telemetry[cli]')")
        self._started = False

    @property
    def uses_rich(self) -> bool:
        """Whether rich draws the frames."""
        return self._live is not None

    def start(self) -> None:
        """Show the header: once on a pipe; on a terminal it heads every frame."""
        if self._started:
            return
        self._started = True
        if self._live is not None:
            self._live.start()
        elif not self.tty and self.header:
            self.out.write(self.header + "\n")  # it may hold several lines
            self.out.flush()

    def draw(self, lines: list[str]) -> None:
        """Show one frame."""
        self.start()
        if not self.tty:
            self.out.write("".join(line + "\n" for line in lines) + "\n")
            self.out.flush()
            return
        size = terminal_size(self.out)
        frame = (self.header.splitlines() if self.header else []) + lines
        if len(frame) > size.lines - 1:  # keep a line free: the cursor rests below the frame
            hidden = len(frame) - (size.lines - 2)
            frame = frame[:max(0, size.lines - 2)] + [f"... {hidden} more lines (a taller terminal shows them)"]
        frame = [fit(line, size.columns) for line in frame]
        if self._live is not None:
            from rich.text import Text
            self._live.update(Text("\n".join(frame), no_wrap=True, overflow="ellipsis"), refresh=True)
        else:
            self.out.write(HOME + "".join(line + CLEAR_LINE + "\n" for line in frame) + CLEAR_BELOW)
            self.out.flush()

    def stop(self) -> None:
        """Leave the last frame on screen; what is written next goes below it."""
        if self._live is not None and self._started:
            self._live.stop()
        self._started = False


def _rich_live(out: TextIO) -> Any:
    try:
        from rich.console import Console
        from rich.live import Live
    except ImportError:
        return None
    console = Console(file=out, force_terminal=True, highlight=False, soft_wrap=False)
    return Live(console=console, auto_refresh=False, transient=False, redirect_stdout=False, redirect_stderr=False,
                vertical_overflow="crop")
