"""The ledgerflow authoring SDK: write DAGs in Python.

::

    from ledgerflow.sdk import DAG, task, BashOperator

    with DAG("hello", schedule=None):
        @task
        def greet() -> str:
            return "hello"

        greet() >> BashOperator(task_id="done", bash_command="echo done")

The SDK imports neither pydantic nor the rest of ``ledgerflow.common`` until a DAG is
serialized, so the task runner starts fast.
"""

from ledgerflow.sdk.baseoperator import BaseOperator, XComArg, chain
from ledgerflow.sdk.context import get_current_context
from ledgerflow.sdk.dag_definition import DAG, dag
from ledgerflow.sdk.decorators import task
from ledgerflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowTaskTimeout,
    DagAuthoringError,
)
from ledgerflow.sdk.operators import BashOperator, PythonOperator

__all__ = [
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowTaskTimeout",
    "BaseOperator",
    "BashOperator",
    "DagAuthoringError",
    "PythonOperator",
    "XComArg",
    "chain",
    "dag",
    "get_current_context",
    "task",
]
