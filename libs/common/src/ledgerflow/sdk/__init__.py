"""The ledgerflow authoring SDK: write DAGs in Python, as in Airflow 3.

::

    from ledgerflow.sdk import DAG, task, BashOperator

    with DAG("hello", schedule=None):
        @task
        def greet() -> str:
            return "hello"

        greet() >> BashOperator(task_id="done", bash_command="echo done")

Airflow DAG files work unchanged too: ``import airflow...`` is served by
:mod:`ledgerflow.sdk.compat`. The SDK imports neither pydantic nor the rest of
``ledgerflow.common`` until a DAG is serialized, so the task runner starts fast; the
runtime names (``Variable``, ``Connection``, ``BaseHook``, ``get_current_context``,
``macros``) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ledgerflow.sdk.assets import (
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
    AssetOrTimeSchedule,
    Dataset,
    Metadata,
)
from ledgerflow.sdk.baseoperator import BaseOperator
from ledgerflow.sdk.branch import (
    BaseBranchOperator,
    BranchMixIn,
    BranchPythonOperator,
    ShortCircuitOperator,
    SkipMixin,
)
from ledgerflow.sdk.dag_definition import DAG, dag
from ledgerflow.sdk.decorators import DecoratedOperator, setup, task, teardown
from ledgerflow.sdk.dependencies import chain, chain_linear, cross_downstream
from ledgerflow.sdk.edges import EdgeModifier, Label
from ledgerflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTerminated,
    AirflowTaskTimeout,
    DagAuthoringError,
    DuplicateTaskIdFound,
    ParamValidationError,
    TaskDeferred,
)
from ledgerflow.sdk.mapping import MappedOperator
from ledgerflow.sdk.operators import BashOperator, EmptyOperator, PythonOperator
from ledgerflow.sdk.params import Param, ParamsDict
from ledgerflow.sdk.rules import TriggerRule, WeightRule
from ledgerflow.sdk.sensors import (
    BaseSensorOperator,
    BashSensor,
    DateTimeSensor,
    ExternalTaskMarker,
    ExternalTaskSensor,
    PokeReturnValue,
    PythonSensor,
    TimeDeltaSensor,
    TimeSensor,
)
from ledgerflow.sdk.state import DagRunState, State, TaskInstanceState
from ledgerflow.sdk.taskgroup import TaskGroup, task_group
from ledgerflow.sdk.xcom_arg import XComArg, literal

if TYPE_CHECKING:
    from ledgerflow.sdk import macros
    from ledgerflow.sdk.compat.shims import get_parsing_context
    from ledgerflow.sdk.context import get_current_context
    from ledgerflow.sdk.models import BaseHook, Connection, Variable
    from ledgerflow.sdk.tracing import tracer

# The runtime half of the SDK, imported on first use (``name -> module``).
_LAZY = {
    "Variable": "ledgerflow.sdk.models",
    "Connection": "ledgerflow.sdk.models",
    "BaseHook": "ledgerflow.sdk.models",
    "get_current_context": "ledgerflow.sdk.context",
    "get_parsing_context": "ledgerflow.sdk.compat.shims",
    "tracer": "ledgerflow.sdk.tracing",
    "AssetWatcher": "ledgerflow.sdk.triggers",
    "KafkaMessageTrigger": "ledgerflow.sdk.triggers",
}


def __getattr__(name: str) -> Any:
    if name == "macros":
        value: Any = importlib.import_module("ledgerflow.sdk.macros")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTerminated",
    "AirflowTaskTimeout",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetOrTimeSchedule",
    "Metadata",
    "BaseBranchOperator",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BashOperator",
    "BashSensor",
    "BranchMixIn",
    "BranchPythonOperator",
    "Connection",
    "DagAuthoringError",
    "DagRunState",
    "Dataset",
    "DateTimeSensor",
    "DecoratedOperator",
    "DuplicateTaskIdFound",
    "EdgeModifier",
    "EmptyOperator",
    "ExternalTaskMarker",
    "ExternalTaskSensor",
    "Label",
    "MappedOperator",
    "Param",
    "ParamValidationError",
    "ParamsDict",
    "PokeReturnValue",
    "PythonOperator",
    "PythonSensor",
    "ShortCircuitOperator",
    "SkipMixin",
    "State",
    "TaskDeferred",
    "TaskGroup",
    "TaskInstanceState",
    "TimeDeltaSensor",
    "TimeSensor",
    "TriggerRule",
    "Variable",
    "WeightRule",
    "XComArg",
    "chain",
    "chain_linear",
    "cross_downstream",
    "dag",
    "get_current_context",
    "get_parsing_context",
    "literal",
    "macros",
    "setup",
    "task",
    "task_group",
    "teardown",
    "tracer",
]
