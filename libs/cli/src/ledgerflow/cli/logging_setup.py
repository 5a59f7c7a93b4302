"""Process-wide logging and metrics for the services the CLI runs.

The formats live in :mod:`ledgerflow.common.logging_setup` (JSON lines or text, with
trace and span ids); this module keeps the CLI's names for them and adds
:func:`configure_service`, which a long-running service calls first.
"""

from __future__ import annotations

from ledgerflow.common.logging_setup import JsonFormatter, configure_logging
from ledgerflow.common.metrics import configure_metrics


def configure_service(service: str) -> None:
    """Logging (``LEDGERFLOW_LOG_FORMAT``/``LEDGERFLOW_LOG_LEVEL``) and metrics
    (Prometheus ``/metrics``, OTLP with ``OTEL_METRICS_EXPORTER=otlp``) for ``service``."""
    configure_logging(service)
    configure_metrics(service)


__all__ = ["JsonFormatter", "configure_logging", "configure_service"]
