"""Execute a DAG file's source and collect its DAGs, with errors that point at the file.

Shared by the parser (``python -m ledgerflow.sdk.parse``) and the task runner
(``python -m ledgerflow.sdk.runner``). Both run in a throw-away process: the module
stays registered in ``sys.modules`` for the life of the process, so that pickling and
dataclasses in user code work.
"""

from __future__ import annotations

import os
import sys
import types
import zlib

from ledgerflow.sdk import _source, compat, setup_teardown, taskgroup
from ledgerflow.sdk import dag_definition as dag_module
from ledgerflow.sdk.dag_definition import DAG
from ledgerflow.sdk.exceptions import DagAuthoringError, DuplicateDagIdFound


class DagFileError(Exception):
    """A DAG file cannot be loaded. ``kind``: syntax, import, cycle, duplicate_task_id,
    duplicate_dag_id, no_dags or error."""

    def __init__(self, message: str, filename: str, lineno: int | None, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.kind = kind

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}" if self.lineno else self.filename
        return f"{where}: {self.kind}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "message": self.message,
            "filename": self.filename,
            "lineno": self.lineno,
            "kind": self.kind,
        }


def module_name_for(filename: str) -> str:
    """A unique module name for a DAG file (Airflow uses the same ``unusual_prefix_``).

    ``unusual_prefix_<crc32 of the filename>_<file stem>``; the digest only needs to keep
    two files apart within one process (hashlib would cost milliseconds of start-up)."""
    digest = f"{zlib.crc32(filename.encode()):08x}"
    stem = "".join(
        c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(filename))[0]
    )
    return f"unusual_prefix_{digest}_{stem}"


def _innermost_line(tb: types.TracebackType | None, filename: str) -> int | None:
    lineno = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


def load_dags(content: str, filename: str, *, validate: bool = True) -> list[DAG]:
    """Run ``content`` as the module ``filename`` and return every DAG it created.

    DAGs are those created while the file ran (``with DAG(...)``, ``@dag`` calls) plus any
    DAG bound at module level. With ``validate``, cycles and duplicate dag ids are errors,
    and so is a file without a DAG. Raises :class:`DagFileError`.

    ``import airflow...`` works in the file (:mod:`ledgerflow.sdk.compat` is installed);
    an Airflow module ledgerflow does not provide is an ``import`` error at the line of
    the import, naming the module.
    """
    compat.install()
    try:
        code = compile(content, filename, "exec", dont_inherit=True)
    except SyntaxError as e:  # includes IndentationError / TabError
        detail = e.msg
        if e.text:
            detail = f"{e.msg}: {e.text.strip()}"
        raise DagFileError(f"{type(e).__name__}: {detail}", filename, e.lineno, "syntax") from None
    except ValueError as e:  # e.g. null bytes in the source
        raise DagFileError(f"{type(e).__name__}: {e}", filename, None, "syntax") from None

    name = module_name_for(filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    directory = os.path.dirname(os.path.abspath(filename))
    if os.path.isabs(filename) and os.path.isdir(directory) and directory not in sys.path:
        sys.path.append(directory)  # sibling helper modules, as Airflow's dags folder

    collected: list[DAG] = []
    previous = (dag_module._collector, _source.current_dag_file)
    open_contexts = len(dag_module._context_stack)
    open_groups = len(taskgroup._group_stack)
    dag_module._collector, _source.current_dag_file = collected, filename
    try:
        exec(code, module.__dict__)
    except DagAuthoringError as e:
        raise DagFileError(e.message, filename, e.lineno, e.kind) from None
    except (Exception, SystemExit) as e:
        message = f"{type(e).__name__}: {e}"
        raise DagFileError(
            message, filename, _innermost_line(e.__traceback__, filename), "import"
        ) from None
    finally:
        dag_module._collector, _source.current_dag_file = previous
        # An exception inside `with DAG(...)` skips nothing, but keep the stack exact anyway.
        del dag_module._context_stack[open_contexts:]
        del taskgroup._group_stack[open_groups:]
        setup_teardown.reset()

    dags: list[DAG] = []
    seen: set[int] = set()
    for candidate in [*collected, *(v for v in vars(module).values() if isinstance(v, DAG))]:
        if id(candidate) not in seen:
            seen.add(id(candidate))
            dags.append(candidate)
    if not validate:
        return dags

    if not dags:
        raise DagFileError(
            "no DAG found in the file (create one with `with DAG(...)`, or call the "
            "@dag-decorated function)",
            filename,
            None,
            "no_dags",
        )
    by_id: dict[str, DAG] = {}
    for d in dags:
        if d.dag_id in by_id:
            first = by_id[d.dag_id]
            raise DagFileError(
                f"dag id {d.dag_id!r} is defined twice in the file"
                + (f" (first at line {first.lineno})" if first.lineno else ""),
                filename,
                d.lineno,
                DuplicateDagIdFound.kind,
            )
        by_id[d.dag_id] = d
    for d in dags:
        try:
            d.validate()
        except DagAuthoringError as e:
            raise DagFileError(e.message, filename, e.lineno, e.kind) from None
    return dags
