"""``python -m ledgerflow.sdk.parse``: turn a DAG file into serialized DAGs.

stdin: ``{"content": "...", "filename": "dags/x.py"}``. stdout: exactly one JSON object,
``{"ok": true, "dags": [SerializedDag, ...]}`` or
``{"ok": false, "error": {"message", "filename", "lineno", "kind"}}``.

The user's file runs in this process, so anything it prints goes to stderr (file
descriptor 1 is pointed at stderr while it runs) and the result is the only thing on
stdout. Run by :func:`ledgerflow.common.dagparse.parse_dag_source`.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any


def parse(content: str, filename: str) -> dict[str, Any]:
    """The JSON-ready result for one file (never raises for a bad file)."""
    from ledgerflow.sdk import compat
    from ledgerflow.sdk.loader import DagFileError, load_dags

    compat.install()

    try:
        dags = load_dags(content, filename)
        serialized = []
        for d in dags:
            try:
                serialized.append(d.serialize(fileloc=filename).model_dump(mode="json"))
            except Exception as e:
                raise DagFileError(
                    f"DAG {d.dag_id!r} cannot be serialized: {type(e).__name__}: {e}",
                    filename,
                    d.lineno,
                    "error",
                ) from None
    except DagFileError as e:
        return {"ok": False, "error": e.as_dict()}
    return {"ok": True, "dags": serialized}


def main() -> int:
    result_fd = os.dup(1)
    os.dup2(2, 1)  # user output (print, subprocesses) goes to stderr
    filename = "<unknown>"
    try:
        request = json.loads(sys.stdin.read())
        content, filename = request["content"], request["filename"]
        if not isinstance(content, str) or not isinstance(filename, str):
            raise TypeError("'content' and 'filename' must be strings")
        result = parse(content, filename)
    except BaseException as e:  # the result is always JSON, never a bare traceback
        traceback.print_exc()
        result = {
            "ok": False,
            "error": {
                "message": f"{type(e).__name__}: {e}",
                "filename": filename,
                "lineno": None,
                "kind": "error",
            },
        }
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(result) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
