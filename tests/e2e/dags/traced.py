"""For the tracing test: ``extract >> flaky``.

``extract`` opens its own spans (with ``ledgerflow.sdk.tracer`` and with plain
OpenTelemetry); ``flaky`` fails its first try and succeeds on its retry.
"""

from datetime import datetime, timedelta

from ledgerflow.sdk import DAG, PythonOperator, tracer
from opentelemetry import trace


def extract() -> int:
    with tracer.start_as_current_span("extract rows") as span:
        span.set_attribute("rows", 3)
        with trace.get_tracer("user.code").start_as_current_span("parse rows"):
            print("extracting 3 rows")
    return 3


def flaky(try_number) -> str:
    if try_number == 1:
        raise RuntimeError("failing on purpose on the first try")
    return "recovered"


with DAG("traced", schedule=None, start_date=datetime(2024, 1, 1)):
    a = PythonOperator(task_id="extract", python_callable=extract)
    b = PythonOperator(
        task_id="flaky", python_callable=flaky, retries=1, retry_delay=timedelta(seconds=1)
    )
    a >> b
