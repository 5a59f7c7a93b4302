"""Which ``airflow.*`` modules exist, and where each of their names comes from.

``MODULES[name]`` maps the attributes of the Airflow module ``name`` to
``"ledgerflow.module:attribute"``; attributes are imported on first access, so a name
whose ledgerflow module is missing fails only when it is used. ``ALIASES`` are Airflow
modules that are a ledgerflow module as a whole. A module that is neither, but is the
parent of one that is, exists as an empty package.
"""

from __future__ import annotations

_SDK = "ledgerflow.sdk"

DAG_NAMES = {
    "DAG": f"{_SDK}.dag_definition:DAG",
    "dag": f"{_SDK}.dag_definition:dag",
}
OPERATOR_NAMES = {
    "BaseOperator": f"{_SDK}.baseoperator:BaseOperator",
    "chain": f"{_SDK}.dependencies:chain",
    "chain_linear": f"{_SDK}.dependencies:chain_linear",
    "cross_downstream": f"{_SDK}.dependencies:cross_downstream",
}
DECORATOR_NAMES = {
    "task": f"{_SDK}.decorators:task",
    "setup": f"{_SDK}.decorators:setup",
    "teardown": f"{_SDK}.decorators:teardown",
    "task_group": f"{_SDK}.taskgroup:task_group",
}
PARAM_NAMES = {
    "Param": f"{_SDK}.params:Param",
    "ParamsDict": f"{_SDK}.params:ParamsDict",
    "DagParam": f"{_SDK}.params:DagParam",
}
SENSOR_BASE_NAMES = {
    "BaseSensorOperator": f"{_SDK}.sensors:BaseSensorOperator",
    "PokeReturnValue": f"{_SDK}.sensors:PokeReturnValue",
}
# The runtime half of the SDK (variables, connections, hooks, the context).
RUNTIME_NAMES = {
    "Variable": f"{_SDK}.models:Variable",
    "Connection": f"{_SDK}.models:Connection",
    "BaseHook": f"{_SDK}.models:BaseHook",
    "get_current_context": f"{_SDK}.context:get_current_context",
}
EXCEPTION_NAMES = {
    name: f"{_SDK}.exceptions:{name}"
    for name in (
        "AirflowException",
        "AirflowBadRequest",
        "AirflowConfigException",
        "AirflowDagCycleException",
        "AirflowFailException",
        "AirflowNotFoundException",
        "AirflowRescheduleException",
        "AirflowSensorTimeout",
        "AirflowSkipException",
        "AirflowTaskTerminated",
        "AirflowTaskTimeout",
        "DownstreamTasksSkipped",
        "DuplicateTaskIdFound",
        "ParamValidationError",
        "RemovedInAirflow4Warning",
        "TaskDeferred",
        "XComNotFound",
    )
}
PYTHON_OPERATOR_NAMES = {
    "PythonOperator": f"{_SDK}.operators:PythonOperator",
    "BranchPythonOperator": f"{_SDK}.branch:BranchPythonOperator",
    "ShortCircuitOperator": f"{_SDK}.branch:ShortCircuitOperator",
    "get_current_context": f"{_SDK}.context:get_current_context",
}
BRANCH_NAMES = {
    "BaseBranchOperator": f"{_SDK}.branch:BaseBranchOperator",
    "BranchMixIn": f"{_SDK}.branch:BranchMixIn",
}
BASH_NAMES = {"BashOperator": f"{_SDK}.operators:BashOperator"}
EMPTY_NAMES = {"EmptyOperator": f"{_SDK}.operators:EmptyOperator"}
TIMEZONE_NAMES = {
    name: f"{_SDK}.timezone:{name}"
    for name in (
        "utc",
        "utcnow",
        "datetime",
        "parse",
        "convert_to_utc",
        "coerce_datetime",
        "make_aware",
        "make_naive",
        "is_localized",
        "is_naive",
    )
}
STATE_NAMES = {
    "State": f"{_SDK}.state:State",
    "TaskInstanceState": f"{_SDK}.state:TaskInstanceState",
    "DagRunState": f"{_SDK}.state:DagRunState",
}
SENSOR_MODULES = {
    "python": {"PythonSensor": f"{_SDK}.sensors:PythonSensor"},
    "time_delta": {
        "TimeDeltaSensor": f"{_SDK}.sensors:TimeDeltaSensor",
        "TimeDeltaSensorAsync": f"{_SDK}.sensors:TimeDeltaSensorAsync",
        "WaitSensor": f"{_SDK}.sensors:WaitSensor",
    },
    "time": {
        "TimeSensor": f"{_SDK}.sensors:TimeSensor",
        "TimeSensorAsync": f"{_SDK}.sensors:TimeSensorAsync",
    },
    "date_time": {
        "DateTimeSensor": f"{_SDK}.sensors:DateTimeSensor",
        "DateTimeSensorAsync": f"{_SDK}.sensors:DateTimeSensorAsync",
    },
    "external_task": {
        "ExternalTaskSensor": f"{_SDK}.sensors:ExternalTaskSensor",
        "ExternalTaskSensorAsync": f"{_SDK}.sensors:ExternalTaskSensorAsync",
        "ExternalTaskMarker": f"{_SDK}.sensors:ExternalTaskMarker",
    },
    "bash": {"BashSensor": f"{_SDK}.sensors:BashSensor"},
}
OPERATOR_MODULES = {
    "bash": BASH_NAMES,
    "python": PYTHON_OPERATOR_NAMES,
    "empty": EMPTY_NAMES,
    "branch": BRANCH_NAMES,
}

TIMETABLE_NAMES = {
    name: f"{_SDK}.timetables:{name}"
    for name in (
        "CronDataIntervalTimetable",
        "CronTriggerTimetable",
        "DeltaDataIntervalTimetable",
        "DeltaTriggerTimetable",
        "EventsTimetable",
        "MultipleCronTriggerTimetable",
    )
}
_TRIGGER = ("CronTriggerTimetable", "DeltaTriggerTimetable", "MultipleCronTriggerTimetable")
_INTERVAL = ("CronDataIntervalTimetable", "DeltaDataIntervalTimetable")
TIMETABLE_MODULES: dict[str, dict[str, str]] = {}
for _prefix in ("airflow.timetables", "airflow.sdk.definitions.timetables"):
    TIMETABLE_MODULES[f"{_prefix}.trigger"] = {k: TIMETABLE_NAMES[k] for k in _TRIGGER}
    TIMETABLE_MODULES[f"{_prefix}.interval"] = {k: TIMETABLE_NAMES[k] for k in _INTERVAL}
    TIMETABLE_MODULES[f"{_prefix}.events"] = {"EventsTimetable": TIMETABLE_NAMES["EventsTimetable"]}
TIMETABLE_MODULES["airflow.timetables.simple"] = {
    name: f"{_SDK}.timetables:{name}"
    for name in ("NullTimetable", "OnceTimetable", "ContinuousTimetable")
}
TIMETABLE_MODULES["airflow.timetables.base"] = {"Timetable": f"{_SDK}.timetables:Timetable"}

SDK_NAMES = {
    **DAG_NAMES,
    **TIMETABLE_NAMES,
    **OPERATOR_NAMES,
    **DECORATOR_NAMES,
    **SENSOR_BASE_NAMES,
    **RUNTIME_NAMES,
    "Param": f"{_SDK}.params:Param",
    "TaskGroup": f"{_SDK}.taskgroup:TaskGroup",
    "XComArg": f"{_SDK}.xcom_arg:XComArg",
    "Label": f"{_SDK}.edges:Label",
    "EdgeModifier": f"{_SDK}.edges:EdgeModifier",
    "TriggerRule": f"{_SDK}.rules:TriggerRule",
    "WeightRule": f"{_SDK}.rules:WeightRule",
    "TaskInstanceState": f"{_SDK}.state:TaskInstanceState",
    "DagRunState": f"{_SDK}.state:DagRunState",
    "Asset": f"{_SDK}.assets:Asset",
    "AssetAlias": f"{_SDK}.assets:AssetAlias",
    "AssetAll": f"{_SDK}.assets:AssetAll",
    "AssetAny": f"{_SDK}.assets:AssetAny",
    "Metadata": f"{_SDK}.assets:Metadata",
    "Model": f"{_SDK}.assets:Model",
    "AssetWatcher": f"{_SDK}.triggers:AssetWatcher",
    "Context": "builtins:dict",
    "literal": f"{_SDK}.xcom_arg:literal",
    "get_parsing_context": f"{_SDK}.compat.shims:get_parsing_context",
    "timezone": f"{_SDK}:timezone",
}

MODULES: dict[str, dict[str, str]] = {
    "airflow": {
        "DAG": f"{_SDK}.dag_definition:DAG",
        "XComArg": f"{_SDK}.xcom_arg:XComArg",
        "Asset": f"{_SDK}.assets:Asset",
        "Dataset": f"{_SDK}.assets:Dataset",
    },
    # --- the task SDK (Airflow 3) ---
    "airflow.sdk": SDK_NAMES,
    "airflow.sdk.definitions.dag": DAG_NAMES,
    "airflow.sdk.definitions.baseoperator": OPERATOR_NAMES,
    "airflow.sdk.definitions.decorators": DECORATOR_NAMES,
    "airflow.sdk.definitions.decorators.task_group": {"task_group": DECORATOR_NAMES["task_group"]},
    "airflow.sdk.definitions.taskgroup": {
        "TaskGroup": f"{_SDK}.taskgroup:TaskGroup",
        "task_group": DECORATOR_NAMES["task_group"],
    },
    "airflow.sdk.definitions.param": PARAM_NAMES,
    "airflow.sdk.definitions.xcom_arg": {
        "XComArg": f"{_SDK}.xcom_arg:XComArg",
        "PlainXComArg": f"{_SDK}.xcom_arg:PlainXComArg",
        "MapXComArg": f"{_SDK}.xcom_arg:MapXComArg",
    },
    "airflow.sdk.definitions.mappedoperator": {
        "MappedOperator": f"{_SDK}.mapping:MappedOperator",
        "OperatorPartial": f"{_SDK}.mapping:OperatorPartial",
    },
    "airflow.sdk.definitions.template": {"literal": f"{_SDK}.xcom_arg:literal"},
    "airflow.sdk.definitions.edges": {
        "Label": f"{_SDK}.edges:Label",
        "EdgeModifier": f"{_SDK}.edges:EdgeModifier",
    },
    "airflow.sdk.definitions.context": {
        "Context": "builtins:dict",
        "get_current_context": RUNTIME_NAMES["get_current_context"],
        "get_parsing_context": SDK_NAMES["get_parsing_context"],
    },
    "airflow.sdk.definitions.variable": {"Variable": RUNTIME_NAMES["Variable"]},
    "airflow.sdk.definitions.connection": {"Connection": RUNTIME_NAMES["Connection"]},
    "airflow.sdk.definitions.asset": {
        "Asset": f"{_SDK}.assets:Asset",
        "AssetAlias": f"{_SDK}.assets:AssetAlias",
        "AssetAll": f"{_SDK}.assets:AssetAll",
        "AssetAny": f"{_SDK}.assets:AssetAny",
        "BaseAsset": f"{_SDK}.assets:BaseAsset",
        "Model": f"{_SDK}.assets:Model",
        "AssetWatcher": f"{_SDK}.triggers:AssetWatcher",
    },
    "airflow.sdk.definitions.asset.metadata": {"Metadata": f"{_SDK}.assets:Metadata"},
    # Runs triggered by messages on Kafka topics (ADR 0014).
    "airflow.providers.common.messaging.triggers.msg_queue": {
        "MessageQueueTrigger": f"{_SDK}.triggers:MessageQueueTrigger"
    },
    "airflow.providers.apache.kafka.triggers.await_message": {
        "AwaitMessageTrigger": f"{_SDK}.triggers:AwaitMessageTrigger"
    },
    "airflow.providers.apache.kafka.triggers.msg_queue": {
        "KafkaMessageQueueTrigger": f"{_SDK}.triggers:KafkaMessageQueueTrigger"
    },
    "airflow.timetables.assets": {"AssetOrTimeSchedule": f"{_SDK}.assets:AssetOrTimeSchedule"},
    "airflow.sdk.bases.operator": OPERATOR_NAMES,
    "airflow.sdk.bases.sensor": SENSOR_BASE_NAMES,
    "airflow.sdk.bases.hook": {"BaseHook": RUNTIME_NAMES["BaseHook"]},
    "airflow.sdk.bases.decorator": {
        "DecoratedOperator": f"{_SDK}.decorators:DecoratedOperator",
        "get_unique_task_id": f"{_SDK}.decorators:get_unique_task_id",
    },
    "airflow.sdk.bases.skipmixin": {"SkipMixin": f"{_SDK}.branch:SkipMixin"},
    "airflow.sdk.bases.branch": BRANCH_NAMES,
    "airflow.sdk.exceptions": EXCEPTION_NAMES,
    "airflow.sdk.timezone": TIMEZONE_NAMES,
    # --- Airflow 2 locations, still importable in Airflow 3 ---
    "airflow.decorators": {**DECORATOR_NAMES, "dag": DAG_NAMES["dag"]},
    "airflow.decorators.base": {
        "DecoratedOperator": f"{_SDK}.decorators:DecoratedOperator",
        "get_unique_task_id": f"{_SDK}.decorators:get_unique_task_id",
    },
    "airflow.models": {
        **DAG_NAMES,
        "BaseOperator": OPERATOR_NAMES["BaseOperator"],
        "Param": PARAM_NAMES["Param"],
        "Variable": RUNTIME_NAMES["Variable"],
        "Connection": RUNTIME_NAMES["Connection"],
        "MappedOperator": f"{_SDK}.mapping:MappedOperator",
        "XComArg": f"{_SDK}.xcom_arg:XComArg",
        "TaskInstance": f"{_SDK}.compat.shims:TaskInstance",
        "DagRun": f"{_SDK}.compat.shims:DagRun",
    },
    "airflow.models.dag": DAG_NAMES,
    "airflow.models.baseoperator": OPERATOR_NAMES,
    "airflow.models.param": PARAM_NAMES,
    "airflow.models.variable": {"Variable": RUNTIME_NAMES["Variable"]},
    "airflow.models.connection": {"Connection": RUNTIME_NAMES["Connection"]},
    "airflow.models.xcom_arg": {"XComArg": f"{_SDK}.xcom_arg:XComArg"},
    "airflow.models.mappedoperator": {"MappedOperator": f"{_SDK}.mapping:MappedOperator"},
    "airflow.models.taskinstance": {"TaskInstance": f"{_SDK}.compat.shims:TaskInstance"},
    "airflow.models.dagrun": {"DagRun": f"{_SDK}.compat.shims:DagRun"},
    "airflow.models.skipmixin": {"SkipMixin": f"{_SDK}.branch:SkipMixin"},
    "airflow.exceptions": EXCEPTION_NAMES,
    "airflow.hooks.base": {"BaseHook": RUNTIME_NAMES["BaseHook"]},
    "airflow.sensors.base": SENSOR_BASE_NAMES,
    "airflow.operators.dummy": {"DummyOperator": f"{_SDK}.operators:DummyOperator"},
    "airflow.datasets": {
        "Dataset": f"{_SDK}.assets:Dataset",
        "DatasetAlias": f"{_SDK}.assets:AssetAlias",
        "DatasetAll": f"{_SDK}.assets:AssetAll",
        "DatasetAny": f"{_SDK}.assets:AssetAny",
    },
    "airflow.datasets.metadata": {"Metadata": f"{_SDK}.assets:Metadata"},
    "airflow.utils.trigger_rule": {"TriggerRule": f"{_SDK}.rules:TriggerRule"},
    "airflow.utils.weight_rule": {"WeightRule": f"{_SDK}.rules:WeightRule"},
    "airflow.utils.task_group": {
        "TaskGroup": f"{_SDK}.taskgroup:TaskGroup",
        "task_group": DECORATOR_NAMES["task_group"],
    },
    "airflow.utils.edgemodifier": {
        "Label": f"{_SDK}.edges:Label",
        "EdgeModifier": f"{_SDK}.edges:EdgeModifier",
    },
    "airflow.utils.dates": {"days_ago": f"{_SDK}.timezone:days_ago"},
    "airflow.utils.helpers": {
        "chain": OPERATOR_NAMES["chain"],
        "cross_downstream": OPERATOR_NAMES["cross_downstream"],
    },
    "airflow.utils.timezone": TIMEZONE_NAMES,
    "airflow.utils.state": STATE_NAMES,
    "airflow.utils.context": {
        "Context": "builtins:dict",
        "get_current_context": RUNTIME_NAMES["get_current_context"],
    },
    "airflow.utils.dag_parsing_context": {
        "get_parsing_context": SDK_NAMES["get_parsing_context"],
    },
}
MODULES.update(TIMETABLE_MODULES)
for _name, _names in OPERATOR_MODULES.items():
    MODULES[f"airflow.operators.{_name}"] = _names
    MODULES[f"airflow.providers.standard.operators.{_name}"] = _names
for _name, _names in SENSOR_MODULES.items():
    MODULES[f"airflow.sensors.{_name}"] = _names
    MODULES[f"airflow.providers.standard.sensors.{_name}"] = _names

ALIASES: dict[str, str] = {
    "airflow.macros": f"{_SDK}.macros",
}

AIRFLOW_VERSION = "3.0.0"
"""``airflow.__version__``: the Airflow API level this layer implements."""


def package_names() -> frozenset[str]:
    """Every module that exists: the tables' modules and all their parents."""
    names: set[str] = set()
    for module in (*MODULES, *ALIASES):
        parts = module.split(".")
        names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(names)
