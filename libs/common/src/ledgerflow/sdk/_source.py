"""Where in the user's DAG file something was declared.

Tasks, DAGs and dependency edges remember the line that created them, so that a parse
error can point at the user's code (``dags/x.py:12: cycle: a -> b -> a``) and the UI can
show it. ``sys._getframe`` is used instead of ``inspect.stack()``, which reads source
files and would make building a large DAG slow.
"""

from __future__ import annotations

import os
import sys

_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# The DAG file being executed by the loader, if any. When set, the innermost frame of
# this file wins, even when the task was created inside a helper module it imports.
current_dag_file: str | None = None


def user_location(depth: int = 1) -> tuple[str | None, int | None]:
    """``(filename, lineno)`` of the user code that called into the SDK.

    Prefers the innermost frame of the DAG file being loaded; otherwise the innermost
    frame outside this package.
    """
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return None, None
    fallback: tuple[str | None, int | None] = (None, None)
    dag_file = current_dag_file
    while frame is not None:
        filename = frame.f_code.co_filename
        if dag_file is not None and filename == dag_file:
            return filename, frame.f_lineno
        if fallback[0] is None and not filename.startswith(_SDK_DIR):
            fallback = (filename, frame.f_lineno)
            if dag_file is None:
                return fallback
        frame = frame.f_back  # type: ignore[assignment]
    return fallback
