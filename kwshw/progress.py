"""Progress bars that stay short in logs.

tqdm redraws its line up to ten times a second. On a terminal each redraw overwrites the last;
written to a file or a pipe (a CI log, ``2> run.log``) every redraw is kept, and a training run
fills the log with thousands of lines. :func:`bar` is tqdm with a slower pace there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm.auto import tqdm
from tqdm.notebook import tqdm_notebook

__all__ = ["LOG_INTERVAL", "bar"]

#: Seconds between two redraws of a bar that writes to a log rather than a terminal.
LOG_INTERVAL = 60.0


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


def bar(iterable: Iterable | None = None, *, file: IO[str] | None = None, **kwargs: Any) -> tqdm:
    """A ``tqdm.auto.tqdm`` progress bar that redraws at most once a minute in logs.

    On a terminal (and in a notebook, where the bar is a widget) the bar is tqdm's own. When
    the stream it writes to (``file``, default ``sys.stderr``) is not a terminal, it redraws
    at most every :data:`LOG_INTERVAL` seconds (``mininterval`` and ``maxinterval``, unless
    given): a log gets the start line, one line a minute on long runs, and the end line.

    ``set_postfix`` redraws at once unless called with ``refresh=False``; pass that, and the
    postfix shows at the next redraw.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over, as for tqdm.
    file : file-like, optional
        Where the bar is written (default ``sys.stderr``).
    **kwargs
        Passed to ``tqdm`` (``total``, ``desc``, ``unit``, ``disable``, ...).

    Returns
    -------
    tqdm.auto.tqdm
        The bar; close it (or use it as a context manager) so that the end line is written.
    """
    stream = sys.stderr if file is None else file
    if not _is_terminal(stream) and not issubclass(tqdm, tqdm_notebook):
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs.setdefault("maxinterval", LOG_INTERVAL)
    return tqdm(iterable, file=file, **kwargs)
