"""Secured Kafka and Postgres settings: how they map to aiokafka and asyncpg.

``kafka_client_kwargs`` is what every producer, consumer and admin client is built from;
``database_url`` carries the Postgres TLS settings to every pool.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ledgerflow.common.kafka_io import consumer_config, kafka_client_kwargs
from ledgerflow.common.settings import Settings
from pydantic import ValidationError


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts (``make test`` exports a bootstrap and a URL)."""
    import os

    for name in list(os.environ):
        if name.startswith("LEDGERFLOW_"):
            monkeypatch.delenv(name)


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, str]:
    """A CA certificate, and a client certificate with its key encrypted by "hunter2"."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "cafile": tmp_path / "ca.crt",
        "certfile": tmp_path / "client.crt",
        "keyfile": tmp_path / "client.key",
    }
    files["cafile"].write_bytes(
        _certificate("test-ca", ca_key, ca=True).public_bytes(serialization.Encoding.PEM)
    )
    files["certfile"].write_bytes(
        _certificate("client", client_key, ca=False).public_bytes(serialization.Encoding.PEM)
    )
    files["keyfile"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        )
    )
    return {k: str(v) for k, v in files.items()}


# ----------------------------------------------------------------------------- Kafka
def test_plaintext_by_default() -> None:
    kwargs = kafka_client_kwargs(Settings(kafka_bootstrap="k1:9092,k2:9092"))
    assert kwargs == {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_with_scram(pem_files: dict[str, str]) -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ledgerflow",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=pem_files["cafile"],
    )
    kwargs = kafka_client_kwargs(settings)
    assert kwargs["security_protocol"] == "SASL_SSL"
    # aiokafka takes SCRAM credentials in its sasl_plain_* arguments too.
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == (
        "SCRAM-SHA-512",
        "ledgerflow",
    )
    assert kwargs["sasl_plain_password"] == "s3cret"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]
    assert "s3cret" not in repr(settings)  # SecretStr keeps it out of logs


def test_ssl_with_client_certificate(pem_files: dict[str, str]) -> None:
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pem_files["cafile"],
        kafka_ssl_certfile=pem_files["certfile"],
        kafka_ssl_keyfile=pem_files["keyfile"],
        kafka_ssl_key_password="hunter2",
    )
    kwargs = kafka_client_kwargs(settings)
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)  # the key was decrypted and loaded
    assert "sasl_mechanism" not in kwargs


def test_ssl_without_a_ca_file_trusts_the_system_store() -> None:
    kwargs = kafka_client_kwargs(Settings(kafka_security_protocol="SSL"))
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_a_wrong_key_password_fails_at_client_creation(pem_files: dict[str, str]) -> None:
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=pem_files["certfile"],
        kafka_ssl_keyfile=pem_files["keyfile"],
        kafka_ssl_key_password="wrong",
    )
    with pytest.raises(ssl.SSLError):
        kafka_client_kwargs(settings)


def test_sasl_plaintext() -> None:
    kwargs = kafka_client_kwargs(
        Settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        )
    )
    assert "ssl_context" not in kwargs
    assert kwargs["sasl_mechanism"] == "PLAIN"


def test_consumers_get_the_security_settings_too() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    config = consumer_config(settings)
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-256"
    assert config["enable_auto_commit"] is False  # the consumer defaults are still there


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs LEDGERFLOW_KAFKA_SASL_MECHANISM"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": "u",
            },
            "needs LEDGERFLOW_KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_sasl_username": "u"}, "LEDGERFLOW_KAFKA_SASL_* is set but"),
        ({"kafka_ssl_cafile": "/ca.pem"}, "LEDGERFLOW_KAFKA_SSL_CAFILE set but"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "GSSAPI",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
            },
            "kafka_sasl_mechanism",
        ),
    ],
)
def test_settings_that_would_be_ignored_are_rejected(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(**overrides)  # type: ignore[arg-type]


def test_security_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGERFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LEDGERFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LEDGERFLOW_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("LEDGERFLOW_KAFKA_SASL_PASSWORD", "pw")
    kwargs = kafka_client_kwargs(Settings())
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("svc", "pw")


async def test_every_aiokafka_client_accepts_the_arguments(pem_files: dict[str, str]) -> None:
    """The mapping is checked against aiokafka's own constructors (no broker needed)."""
    kwargs = kafka_client_kwargs(
        Settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
            kafka_ssl_cafile=pem_files["cafile"],
        )
    )
    producer = AIOKafkaProducer(**kwargs)
    consumer = AIOKafkaConsumer(**kwargs)
    admin = AIOKafkaAdminClient(**kwargs)
    assert producer.client._security_protocol == "SASL_SSL"
    assert consumer._client._sasl_mechanism == "SCRAM-SHA-512"
    assert admin._client._ssl_context is kwargs["ssl_context"]
    await producer.stop()  # never started: releases nothing, must not fail
    await consumer.stop()


# -------------------------------------------------------------------------- Postgres
def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_database_tls_settings_go_into_the_url() -> None:
    settings = Settings(
        database_url="postgresql://lf:p%40ss@db.example:5432/lf?application_name=x",
        database_sslmode="verify-full",
        database_ssl_rootcert="/etc/ledgerflow/postgres-ca/ca.crt",
    )
    parts = urlsplit(settings.database_url)
    assert parts.netloc == "lf:p%40ss@db.example:5432"  # credentials untouched
    assert _query(settings.database_url) == {
        "application_name": ["x"],
        "sslmode": ["verify-full"],
        "sslrootcert": ["/etc/ledgerflow/postgres-ca/ca.crt"],
    }


def test_database_tls_from_the_environment_applies_to_the_default_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_SSLMODE", "require")
    assert _query(Settings().database_url) == {"sslmode": ["require"]}


def test_no_database_tls_settings_leave_the_url_alone() -> None:
    url = "postgresql://lf@db/lf?sslmode=verify-ca"
    assert Settings(database_url=url).database_url == url


def test_database_sslmode_in_two_places_must_agree() -> None:
    url = "postgresql://lf@db/lf?sslmode=disable"
    with pytest.raises(ValidationError, match="set it in one place"):
        Settings(database_url=url, database_sslmode="verify-full")
    same = Settings(database_url=url.replace("disable", "require"), database_sslmode="require")
    assert _query(same.database_url) == {"sslmode": ["require"]}


def test_an_unknown_sslmode_is_rejected() -> None:
    with pytest.raises(ValidationError, match="database_sslmode"):
        Settings(database_sslmode="sometimes")  # type: ignore[arg-type]


async def test_asyncpg_reads_the_tls_settings_from_the_url(pem_files: dict[str, str]) -> None:
    """asyncpg (not libpq) parses the URL: check it turns our query into verified TLS."""
    from asyncpg import connect_utils

    settings = Settings(
        database_url="postgresql://lf@db.example/lf",
        database_sslmode="verify-full",
        database_ssl_rootcert=pem_files["cafile"],
    )
    addrs, params = connect_utils._parse_connect_dsn_and_args(
        dsn=settings.database_url,
        host=None,
        port=None,
        user=None,
        password=None,
        passfile=None,
        database=None,
        ssl=None,
        direct_tls=None,
        server_settings=None,
        target_session_attrs=None,
        krbsrvname=None,
        gsslib=None,
        service=None,
        servicefile=None,
    )
    assert params.sslmode == connect_utils.SSLMode.verify_full
    assert params.ssl.check_hostname and params.ssl.verify_mode == ssl.CERT_REQUIRED


# ------------------------------------------------------------- every client is covered
ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
# No client may be built from the bare bootstrap address (no TLS/SASL would apply).
PENDING: set[str] = set()


def test_every_kafka_client_is_built_with_the_security_settings() -> None:
    import ast

    offenders = set()
    for path in sorted([*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in CLIENTS and any(k.arg == "bootstrap_servers" for k in node.keywords):
                offenders.add(str(path.relative_to(ROOT)))
    assert offenders <= PENDING, (
        f"{sorted(offenders - PENDING)} build a Kafka client from the bootstrap address "
        "alone: use **kafka_client_kwargs(settings) (or consumer_config) so TLS/SASL apply"
    )
