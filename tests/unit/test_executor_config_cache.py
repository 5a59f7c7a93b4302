"""The executor's fold of the config topic (no Kafka) and masking in the log stream."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from ledgerflow.common import events as ev
from ledgerflow.common.secrets import Cipher, generate_key
from ledgerflow.executor.config_cache import ConfigState
from ledgerflow.executor.logstream import MAX_LINE_CHARS, AttemptLogStream

from tests.unit.test_executor_logstream import ITEM, FakeProducer

KEY = generate_key()
CIPHER = Cipher(KEY)


def fact(data: ev.ConfigEvent, event_id: str | None = None) -> ev.Envelope:
    key = getattr(data, "key", None) or getattr(data, "conn_id", "")
    return ev.make_envelope(
        data,
        id=event_id or str(uuid.uuid4()),
        source="ledgerflow/api",
        time=datetime.now(UTC),
        aggregate_key=key,
    )


def var(key: str, value: str, **more: object) -> ev.Envelope:
    return fact(ev.VariableSet(key=key, value=CIPHER.encrypt(value), **more))  # type: ignore[arg-type]


def test_last_fact_per_key_wins_and_deletes_remove() -> None:
    state = ConfigState(CIPHER)
    state.apply(var("a", "1"))
    state.apply(var("a", "2"))
    state.apply(var("b", "x"))
    state.apply(fact(ev.VariableDeleted(key="b")))
    state.apply(
        fact(
            ev.ConnectionSet(
                conn_id="c",
                conn_type="http",
                host="h",
                schema="s",
                password=CIPHER.encrypt("pw-123"),
                extra=CIPHER.encrypt('{"k": 1}'),
            )
        )
    )
    assert state.request_fields() == {
        "variables": {"a": "2"},
        "connections": {
            "c": {
                "conn_type": "http",
                "host": "h",
                "schema": "s",
                "login": None,
                "password": "pw-123",
                "port": None,
                "extra": '{"k": 1}',
            }
        },
    }
    state.apply(fact(ev.ConnectionDeleted(conn_id="c")))
    assert state.request_fields()["connections"] == {}


def test_a_repeated_event_id_is_ignored() -> None:
    state = ConfigState(CIPHER)
    first = var("a", "old")
    assert state.apply(first)
    assert state.apply(var("a", "new"))
    assert not state.apply(first)  # a redelivered or re-sent fact changes nothing
    assert state.request_fields()["variables"] == {"a": "new"}


def test_undecryptable_values_are_left_out() -> None:
    state = ConfigState(Cipher(generate_key()))  # not the key the values were made with
    state.apply(var("a", "1"))
    assert state.request_fields()["variables"] == {}
    keyless = ConfigState(Cipher(None))
    keyless.apply(var("a", "1"))
    assert keyless.request_fields()["variables"] == {}


def test_masker_knows_every_secret_and_nothing_else() -> None:
    state = ConfigState(CIPHER)
    state.apply(var("region", "eu-west-1"))
    state.apply(var("db_password", "pw-variable"))
    state.apply(var("quiet", "is-secret-flag", is_secret=True))
    state.apply(var("service", json.dumps({"url": "https://u", "api_key": "ak-in-json"})))
    state.apply(
        fact(
            ev.ConnectionSet(
                conn_id="c",
                conn_type="http",
                password=CIPHER.encrypt("conn-pw"),
                extra=CIPHER.encrypt(json.dumps({"access_token": "tok-extra", "x": "visible"})),
            )
        )
    )
    text = "eu-west-1 pw-variable is-secret-flag ak-in-json conn-pw tok-extra visible https://u"
    assert state.masker.mask(text) == "eu-west-1 *** *** *** *** *** visible https://u"
    state.apply(var("later_secret", "added-later"))
    assert state.masker.mask("added-later") == "***"  # rebuilt after a change


async def test_log_stream_masks_every_line_before_it_is_sent() -> None:
    p = FakeProducer()
    state = ConfigState(CIPHER)
    state.apply(var("db_password", "pw-variable"))
    logs = AttemptLogStream(p, "logs", ITEM, source="t", causation_id="c", mask=state.masker.mask)
    logs.write("stdout", "connecting with pw-variable")
    logs.write("system", "attempt failed: bad password 'pw-variable'")
    # A secret across the 64 KiB split of a long line is still caught.
    logs.write("stdout", "x" * (MAX_LINE_CHARS - 3) + "pw-variable")
    await logs.close()
    texts = [ln.text for _, env, _ in p.sent for ln in env.data.lines]
    assert texts[:2] == ["connecting with ***", "attempt failed: bad password '***'"]
    assert all("pw-variable" not in t for t in texts)
    assert "".join(texts[2:]) == "x" * (MAX_LINE_CHARS - 3) + "***"
