"""Fernet encryption, sensitive names, redaction and log masking (ledgerflow.common.secrets)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from ledgerflow.common.secrets import (
    REDACTED,
    Cipher,
    FernetKeyError,
    Masker,
    generate_key,
    is_sensitive,
    merge_redacted,
    merge_redacted_text,
    redact,
    redact_json_text,
)
from ledgerflow.common.settings import Settings

NEVER_MASKED = ("true", "false", "none", "null")

# --------------------------------------------------------------------------- Cipher


def test_round_trip_and_ciphertext_hides_the_value() -> None:
    cipher = Cipher(generate_key())
    token = cipher.encrypt("hunter2 ✓")
    assert "hunter2" not in token
    assert cipher.decrypt(token) == "hunter2 ✓"
    assert cipher.encrypt("x") != cipher.encrypt("x")  # random IV: no equality leaks


def test_from_settings() -> None:
    key = generate_key()
    cipher = Cipher.from_settings(Settings(fernet_key=key))
    assert cipher.configured
    assert Cipher(key).decrypt(cipher.encrypt("v")) == "v"
    assert not Cipher.from_settings(Settings(fernet_key=None)).configured


@pytest.mark.parametrize("keys", [None, "", " , "])
def test_missing_key_is_a_clear_error(keys: str | None) -> None:
    cipher = Cipher(keys)
    with pytest.raises(FernetKeyError, match=r"^LEDGERFLOW_FERNET_KEY is not set: "):
        cipher.encrypt("v")
    with pytest.raises(FernetKeyError, match=r"^LEDGERFLOW_FERNET_KEY is not set: "):
        cipher.decrypt("v")
    assert FernetKeyError.retryable is False


def test_malformed_key_is_a_clear_error() -> None:
    with pytest.raises(FernetKeyError, match="not a valid Fernet key"):
        Cipher("not-a-key").encrypt("v")


def test_wrong_key_is_a_clear_error() -> None:
    token = Cipher(generate_key()).encrypt("v")
    with pytest.raises(FernetKeyError, match="cannot decrypt a stored value"):
        Cipher(generate_key()).decrypt(token)


def test_rotation_first_key_encrypts_all_decrypt() -> None:
    old, new = generate_key(), generate_key()
    old_token = Cipher(old).encrypt("before")
    rotated = Cipher(f"{new}, {old}")
    assert rotated.decrypt(old_token) == "before"
    new_token = rotated.encrypt("after")
    assert Fernet(new.encode()).decrypt(new_token.encode()) == b"after"
    with pytest.raises(FernetKeyError):
        Cipher(old).decrypt(new_token)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "DB_PASSWORD",
        "my_secret_thing",
        "passwd",
        "Authorization",
        "stripe_api_key",
        "apikey",
        "github_access_token",
        "ssh_private_key",
    ],
)
def test_sensitive_names(name: str) -> None:
    assert is_sensitive(name)


@pytest.mark.parametrize("name", ["region", "host", "", None])
def test_not_sensitive_names(name: str | None) -> None:
    assert not is_sensitive(name)


def test_extra_sensitive_names() -> None:
    assert is_sensitive("region_x", extra_names=["REGION"])


# --------------------------------------------------------------------------- redaction


def test_redact_walks_dicts_and_lists() -> None:
    value = {"host": "h", "password": "p", "nested": [{"api_key": "k", "n": 1}], "port": 5}
    assert redact(value) == {
        "host": "h",
        "password": REDACTED,
        "nested": [{"api_key": REDACTED, "n": 1}],
        "port": 5,
    }
    assert redact({"a": "x", "b": 3, "c": None}, "my_secret") == {
        "a": REDACTED,
        "b": REDACTED,
        "c": None,
    }
    assert redact("plain", "region") == "plain"


def test_redact_json_text() -> None:
    assert redact_json_text("hunter2", "db_password") == REDACTED
    assert redact_json_text("12345", "db_password") == REDACTED  # numbers too
    assert redact_json_text("eu", "region") == "eu"
    assert redact_json_text("eu", "region", hide=True) == REDACTED
    doc = json.loads(redact_json_text('{"user": "u", "password": "p"}', "creds") or "")
    assert doc == {"user": "u", "password": REDACTED}
    assert redact_json_text(None) is None
    assert redact_json_text("not json {", "x") == "not json {"


def test_merge_redacted_restores_only_hidden_places() -> None:
    old = {"user": "u", "password": "p", "note": "n"}
    new = {"user": "u2", "password": REDACTED, "note": REDACTED}
    # "note" is not sensitive: a literal *** there is what the user wants.
    assert merge_redacted(new, old) == {"user": "u2", "password": "p", "note": REDACTED}
    assert merge_redacted(REDACTED, "old", name="api_key") == "old"
    assert merge_redacted(REDACTED, "old", name="region") == REDACTED
    assert merge_redacted_text(REDACTED, "s3", name="x", hidden=True) == "s3"
    assert merge_redacted_text('{"password": "***", "a": 1}', '{"password": "p"}') == (
        '{"password": "p", "a": 1}'
    )
    assert merge_redacted_text("new", "old", name="password") == "new"


# --------------------------------------------------------------------------- masking


def test_masker_replaces_secrets_and_their_printed_forms() -> None:
    secret = 'pa"ss\\word/é?'
    masker = Masker([secret])
    assert masker.mask(f"connecting with {secret} now") == "connecting with *** now"
    assert masker.mask(f"repr: {secret!r}") == "repr: '***'"
    assert masker.mask(json.dumps({"pw": secret})) == '{"pw": "***"}'
    assert masker.mask("postgres://u:pa%22ss%5Cword%2F%C3%A9%3F@h/db") == "postgres://u:***@h/db"
    assert masker.mask("nothing here") == "nothing here"


def test_masker_skips_short_and_trivial_values() -> None:
    masker = Masker(["ab", "true", "", "abc"])
    assert masker.mask("ab true abc") == "ab true ***"
    assert len(Masker(["ab", "null"])) == 0
    assert Masker().mask("anything") == "anything"


def test_masker_prefers_the_longest_secret_and_handles_multiline() -> None:
    masker = Masker(["secret", "secret-plus-more"])
    assert masker.mask("x secret-plus-more y") == "x *** y"
    key = "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----"
    masker.add(key)
    assert masker.mask("line: AAAABBBBCCCC") == "line: ***"
    masker.add({"nested": ["listed-value"]})
    assert masker("got listed-value") == "got ***"


@given(
    st.text(min_size=3).filter(
        lambda s: s.strip() == s and "*" not in s and s.lower() not in NEVER_MASKED
    )
)
def test_masked_text_never_contains_the_secret(secret: str) -> None:
    text = f"before {secret} middle {secret!r} after {json.dumps(secret)}"
    assert secret not in Masker([secret]).mask(text)


def test_mask_deep_walks_json_values() -> None:
    masker = Masker(["s3cr3t"])
    value = {"cmd": "echo s3cr3t", "args": ["s3cr3t", 1, None], "s3cr3t": True}
    assert masker.mask_deep(value) == {"cmd": "echo ***", "args": ["***", 1, None], "***": True}
