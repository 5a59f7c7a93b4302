"""A trigger's ``conf`` checked against the DAG's params, as Airflow checks it when a
run is created (``ParamsDict.validate``): each param's value is the conf's value, or
else its default, and must satisfy the param's JSON schema.

The conf itself is kept as given (Airflow resolves params at run time too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from ledgerflow.common.dagmodel import SerializedDag


def conf_problem(dag: SerializedDag, conf: Mapping[str, Any]) -> str | None:
    """Why ``conf`` is not acceptable for ``dag``, in Airflow's words ("Invalid input
    for param NAME: REASON"), or None when it is. Keys of ``conf`` that are not params
    are allowed, as in Airflow."""
    names = [*dag.params, *(n for n in dag.param_schemas if n not in dag.params)]
    for name in names:
        if name in conf:
            value = conf[name]
        elif name in dag.params:
            value = dag.params[name]
        else:
            return f"Invalid input for param {name}: No value passed and Param has no default value"
        schema = dag.param_schemas.get(name)
        if not schema:
            continue
        try:
            jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
        except jsonschema.ValidationError as exc:
            return f"Invalid input for param {name}: {exc.message}"
        except jsonschema.SchemaError as exc:
            return f"Invalid schema for param {name}: {exc.message}"
    return None
