"""Pure parts of the API service: configuration, tokens, ids, timestamp format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from ledgerflow.api.app import create_app
from ledgerflow.api.auth import Authenticator, ConfigurationError, InvalidToken
from ledgerflow.api.commands import manual_run_id, version_id_for
from ledgerflow.api.db import migration_files
from ledgerflow.api.schemas import Timestamp
from ledgerflow.common.settings import Settings
from pydantic import BaseModel


def test_api_refuses_to_start_without_an_admin_password() -> None:
    with pytest.raises(ConfigurationError, match="LEDGERFLOW_ADMIN_PASSWORD"):
        create_app(Settings(admin_password=None))


def test_tokens_round_trip_and_are_checked() -> None:
    auth = Authenticator.from_settings(Settings(admin_password="pw", secret_key="k" * 32))
    assert auth.check_password("admin", "pw") and not auth.check_password("admin", "nope")
    claims = auth.verify(auth.issue("admin"))
    assert (claims.username, claims.role) == ("admin", "admin")
    other = Authenticator.from_settings(Settings(admin_password="pw", secret_key="x" * 32))
    with pytest.raises(InvalidToken):
        other.verify(auth.issue("admin"))
    expired = Authenticator(username="admin", password="pw", secret="k" * 32, ttl_seconds=-10)
    with pytest.raises(InvalidToken, match="expired"):
        auth.verify(expired.issue("admin"))


def test_without_a_secret_key_each_process_signs_with_its_own() -> None:
    a = Authenticator.from_settings(Settings(admin_password="pw"))
    b = Authenticator.from_settings(Settings(admin_password="pw"))
    with pytest.raises(InvalidToken):
        b.verify(a.issue("admin"))


def test_version_id_is_a_content_hash() -> None:
    assert version_id_for("d", "x") == version_id_for("d", "x")
    assert version_id_for("d", "x") != version_id_for("d", "y") != version_id_for("e", "x")
    assert len(version_id_for("d", "x")) == 20


def test_manual_run_id_looks_like_airflows() -> None:
    now = datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC)
    assert manual_run_id(None, now) == "manual__2026-11-24T01:02:03.000000+00:00"
    logical = datetime(2026, 1, 1, tzinfo=UTC)
    assert manual_run_id(logical, now) == "manual__2026-01-01T00:00:00.000000+00:00"


def test_timestamps_have_offset_and_microseconds() -> None:
    class M(BaseModel):
        at: Timestamp

    assert M(at=datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)).model_dump_json() == (
        '{"at":"2026-11-24T01:02:03.000123+00:00"}'
    )
    plus2 = timezone(timedelta(hours=2))
    assert M(at=datetime(2026, 11, 24, 3, 2, 3, tzinfo=plus2)).model_dump(mode="json") == {
        "at": "2026-11-24T01:02:03.000000+00:00"
    }


def test_migrations_ship_with_the_package_in_order() -> None:
    versions = [v for v, _ in migration_files()]
    assert versions and versions == sorted(versions) and versions[0] == "0001_projection"
