"""Progress of long command-line work: a tqdm bar on a terminal, else a line at every tenth.

For the ``twin`` commands only (the library never prints: its functions take a
``progress(done, total)`` callback).
"""

from __future__ import annotations

import sys

__all__ = ["progress_reporter"]


def progress_reporter(args, desc, unit):
    """``(progress(done, total), close())`` for long work: a tqdm bar on a terminal, else a log
    line at every tenth of the work; nothing with ``-q``."""
    if getattr(args, "quiet", False):
        return (lambda done, total: None), (lambda: None)
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=1, unit=unit, desc=desc, leave=False)

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        return progress, bar.close
    shown = [-1]

    def progress(done, total):
        tenth = (10 * done) // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            sys.stderr.write(f"{desc}: {done} of {total} {unit}s done\n")
    return progress, (lambda: None)
