"""The probe server (/healthz, /readyz), its place around a service, readiness checks."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from ledgerflow.cli.readiness import GroupMembership, is_member
from ledgerflow.cli.service_commands import with_probes
from ledgerflow.cli.service_runner import run_service
from ledgerflow.common import probes
from ledgerflow.common.probes import ProbeServer, Readiness
from ledgerflow.common.settings import Settings


async def _request(port: int, raw: bytes) -> tuple[int, dict[str, object] | None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, (json.loads(body) if body else None)


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, object] | None]:
    return await _request(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


async def test_liveness_answers_without_a_readiness_check() -> None:
    async with ProbeServer("127.0.0.1", 0, service="scheduler") as server:
        assert await _get(server.port, "/healthz") == (
            200,
            {"status": "alive", "service": "scheduler"},
        )
        assert (await _get(server.port, "/readyz"))[0] == 200


async def test_readiness_follows_the_check() -> None:
    state = Readiness(False, "not a member of ledgerflow-scheduler yet")

    async def check() -> Readiness:
        return state

    async with ProbeServer("127.0.0.1", 0, readiness=check, service="scheduler") as server:
        status, body = await _get(server.port, "/readyz")
        assert status == 503
        assert body is not None and body["reason"] == state.reason
        assert (await _get(server.port, "/healthz"))[0] == 200  # liveness is independent
        state = Readiness(True)
        assert (await _get(server.port, "/readyz?verbose=1"))[0] == 200


async def test_a_failing_or_slow_check_means_not_ready() -> None:
    async def broken() -> Readiness:
        raise ConnectionError("broker gone")

    async def slow() -> Readiness:
        await asyncio.sleep(10)
        return Readiness(True)

    async with ProbeServer("127.0.0.1", 0, readiness=broken) as server:
        status, body = await _get(server.port, "/readyz")
        assert status == 503 and body is not None and "broker gone" in str(body["reason"])
    async with ProbeServer("127.0.0.1", 0, readiness=slow, check_timeout=0.05) as server:
        status, body = await _get(server.port, "/readyz")
        assert status == 503 and body is not None and "took over" in str(body["reason"])


async def test_other_requests() -> None:
    async with ProbeServer("127.0.0.1", 0) as server:
        assert (await _get(server.port, "/nope"))[0] == 404
        assert (await _get(server.port, "/healthz", method="POST"))[0] == 405
        status, body = await _get(server.port, "/healthz", method="HEAD")
        assert (status, body) == (200, None)
        assert (await _request(server.port, b"nonsense\r\n\r\n"))[0] == 400


async def test_metrics_in_the_prometheus_text_format() -> None:
    from ledgerflow.common import metrics

    metrics.dead_lettered("probe-test", "t")  # a no-op unless metrics are configured
    async with ProbeServer("127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        data = await reader.read()
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Type: text/plain; version=0.0.4" in head
    assert b"# TYPE" in body  # at least the process collector's metrics


async def test_a_taken_port_fails_the_start_and_stop_is_idempotent() -> None:
    async with ProbeServer("127.0.0.1", 0) as first:
        second = ProbeServer("127.0.0.1", first.port)
        with pytest.raises(OSError):
            await second.start()
        await second.stop()
    await first.stop()


async def test_the_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    async with ProbeServer("127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        ok = await asyncio.to_thread(probes.main, ["check", f"{url}/healthz"])
        missing = await asyncio.to_thread(probes.main, ["check", f"{url}/nope"])
    assert (ok, missing) == (0, 1)
    assert probes.main(["check", "http://127.0.0.1:9/healthz"]) == 1  # nothing listens
    assert probes.main([]) == 2
    assert probes.default_check_url({"LEDGERFLOW_PROBE_PORT": "9999"}) == (
        "http://127.0.0.1:9999/healthz"
    )


def test_without_a_probe_port_the_service_runs_alone() -> None:
    async def service() -> None:
        return None

    assert with_probes("scheduler", Settings(probe_port=None), service) is service


def test_probes_run_next_to_the_service_until_it_stops() -> None:
    """Readiness is asked for while the service runs; a signal stops both, cleanly."""
    seen: list[tuple[int, object]] = []
    closed: list[bool] = []

    class Check:
        async def __call__(self) -> Readiness:
            return Readiness(True)

        async def aclose(self) -> None:
            closed.append(True)

    async def service() -> None:
        loop = asyncio.get_running_loop()
        # The probe server is already up when the service starts.
        for path in ("/healthz", "/readyz"):
            seen.append(await _get(port, path))
        loop.call_soon(signal.raise_signal, signal.SIGTERM)
        await asyncio.Event().wait()

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(probe_host="127.0.0.1", probe_port=port)
    assert run_service("scheduler", with_probes("scheduler", settings, service, Check)) == 0
    assert [status for status, _ in seen] == [200, 200]
    assert closed == [True]


@pytest.mark.parametrize(
    ("client_id", "expected"),
    [
        ("scheduler-pod-7f9c-12", True),  # the scheduler's f"scheduler-{host}-{pid}"
        ("pod-7f9c:12:default:ab12cd34", True),  # the executor's f"{host}:{pid}:{queue}:..."
        ("scheduler-pod-7f9c-120", False),  # another process
        ("scheduler-other-12", False),  # another host
        ("pod-7f9c:1:default:ab12cd34", False),
    ],
)
def test_group_membership_matches_this_host_and_process(client_id: str, expected: bool) -> None:
    assert is_member(client_id, "pod-7f9c", 12) is expected


def test_a_pid_inside_the_host_name_does_not_count() -> None:
    assert not is_member("scheduler-host-1-7", "host-1", 1)
    assert is_member("scheduler-host-1-1", "host-1", 1)


async def test_group_membership_is_not_ready_when_kafka_is_unreachable() -> None:
    check = GroupMembership(
        Settings(kafka_bootstrap="127.0.0.1:9"), "ledgerflow-scheduler", hostname="h", pid=1
    )
    result = await ProbeServer("127.0.0.1", 0, readiness=check, check_timeout=5).readiness()
    assert not result.ready
    assert "ledgerflow-scheduler" in result.reason
    await check.aclose()
