"""Write the JSON Schema of the event envelope: ``python -m ledgerflow.common.schema_export``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ledgerflow.common.events import json_schema

DEFAULT_PATH = Path("docs/events.schema.json")


def render() -> str:
    """The published schema, as committed under docs/."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    path.write_text(render())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
