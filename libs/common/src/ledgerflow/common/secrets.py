"""Secrets at rest and in logs: Fernet encryption, sensitive names, masking.

Variable values, connection passwords and connection extras are encrypted with
``LEDGERFLOW_FERNET_KEY`` before they are written to Kafka, so they are ciphertext on the
config topic and in the Postgres projection (ADR 0006). Only the API (to answer reads)
and the executor (to hand tasks their values) hold the key.

- :class:`Cipher`: ``encrypt(str) -> str`` / ``decrypt(str) -> str``; several
  comma-separated keys mean rotation (the first encrypts, all decrypt), as Airflow's
  ``fernet_key`` does with ``MultiFernet``.
- :func:`is_sensitive`: Airflow's rule for names whose values are never shown
  (``password``, ``secret``, ``api_key``, ... anywhere in the name, any case).
- :func:`redact`: a copy of a value with sensitive parts replaced by ``***``, for API
  responses (Airflow's ``secrets_masker.redact``).
- :class:`Masker`: replaces known secret values inside free text (task log lines),
  including their escaped forms, like Airflow's ``SecretsMasker``.

Imports only the standard library and ``cryptography``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

REDACTED = "***"
"""What a hidden value is replaced with (Airflow's replacement)."""

SENSITIVE_NAMES: frozenset[str] = frozenset(
    {
        "password",
        "secret",
        "passwd",
        "authorization",
        "api_key",
        "apikey",
        "access_token",
        "private_key",
        # Airflow 3's DEFAULT_SENSITIVE_FIELDS beyond the above.
        "token",
        "passphrase",
        "keyfile_dict",
        "service_account",
    }
)
"""A variable key or extra field whose name contains one of these (in any case) is
sensitive: its value is shown as ``***`` and masked in task logs (ADR 0006)."""

MIN_MASK_LENGTH = 3
"""Shorter values are not masked in text: masking ``"a"`` would ruin every log line."""

# Values too common to mask even when they are secret (Airflow skips a few the same way).
_NEVER_MASK = frozenset({"true", "false", "none", "null"})

_KEY_ENV = "LEDGERFLOW_FERNET_KEY"


class FernetKeyError(RuntimeError):
    """The Fernet key is missing, malformed, or cannot decrypt a stored value.

    Not retryable: the configuration must change (set or fix ``LEDGERFLOW_FERNET_KEY``).
    """

    retryable = False


def generate_key() -> str:
    """A new random Fernet key (urlsafe base64 of 32 bytes), for ``LEDGERFLOW_FERNET_KEY``."""
    return Fernet.generate_key().decode("ascii")


class Cipher:
    """Encrypts and decrypts strings with ``LEDGERFLOW_FERNET_KEY``.

    Built from the raw setting, which may be unset: the error comes when a value is
    encrypted or decrypted, so services that never meet a secret run without a key.
    """

    def __init__(self, keys: str | None) -> None:
        self._fernet: MultiFernet | None = None
        self._problem: str | None = None
        parts = [k.strip() for k in (keys or "").split(",") if k.strip()]
        if not parts:
            self._problem = (
                f"{_KEY_ENV} is not set: variables and connections are stored encrypted; "
                "set it to the same key on the api and every executor (generate one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`)'
            )
            return
        fernets = []
        for i, part in enumerate(parts):
            try:
                fernets.append(Fernet(part.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                self._problem = (
                    f"{_KEY_ENV} is not a valid Fernet key (key #{i + 1} of {len(parts)}): "
                    "each key must be 32 bytes in urlsafe base64 (44 characters)"
                )
                return
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Any) -> Cipher:
        """From ``settings.fernet_key`` (a ``SecretStr`` or None)."""
        key = settings.fernet_key
        return cls(key.get_secret_value() if key is not None else None)

    @property
    def configured(self) -> bool:
        """True when a usable key is set."""
        return self._fernet is not None

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise FernetKeyError(self._problem or f"{_KEY_ENV} is not set")
        return self._fernet

    def encrypt(self, plaintext: str) -> str:
        """Ciphertext (a urlsafe base64 Fernet token) of ``plaintext``."""
        return self._require().encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext of a token made by :meth:`encrypt` with one of the keys."""
        fernet = self._require()
        try:
            return fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise FernetKeyError(
                f"{_KEY_ENV} cannot decrypt a stored value: it was encrypted with another "
                "key (to rotate, set the new key first and keep the old one after a comma)"
            ) from None


def is_sensitive(name: str | None, *, extra_names: Iterable[str] = ()) -> bool:
    """Whether values named ``name`` must be hidden (Airflow's ``should_hide_value_for_key``):
    the name, lower-cased, contains a sensitive word."""
    if not isinstance(name, str):
        return False
    lowered = name.strip().lower()
    return any(s in lowered for s in SENSITIVE_NAMES) or any(
        s.lower() in lowered for s in extra_names if s
    )


def redact(value: Any, name: str | None = None) -> Any:
    """A copy of ``value`` with sensitive parts replaced by ``***``.

    Under a sensitive ``name`` every string (and number) is replaced; otherwise dicts are
    walked and the values of sensitive keys replaced, at any depth.
    """
    if is_sensitive(name):
        return _redact_all(value)
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, name) for v in value]
    return value


def _redact_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_all(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return REDACTED


def redact_json_text(
    text: str | None, name: str | None = None, *, hide: bool = False
) -> str | None:
    """Redact a value stored as text that may hold JSON (a variable value, an extra).

    JSON objects and arrays keep their shape with sensitive parts replaced; anything else
    is ``***`` when ``hide`` is set or ``name`` is sensitive, else unchanged.
    """
    if text is None:
        return None
    hide = hide or is_sensitive(name)
    try:
        parsed = json.loads(text)
    except ValueError:
        return REDACTED if hide else text
    if isinstance(parsed, dict | list):
        return json.dumps(_redact_all(parsed) if hide else redact(parsed))
    return REDACTED if hide else text


def merge_redacted(new: Any, old: Any, *, name: str | None = None, hidden: bool = False) -> Any:
    """Undo redaction in an edited copy (Airflow's ``secrets_masker.merge``): wherever a
    hidden place of ``new`` (under a sensitive name, or everywhere when ``hidden``) still
    says ``***`` and ``old`` has a value there, keep ``old``'s. A client can then send
    back what it read without wiping the secrets it was not shown."""
    hidden = hidden or is_sensitive(name)
    if hidden and new == REDACTED:
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {
            k: merge_redacted(v, old[k], name=k, hidden=hidden) if k in old else v
            for k, v in new.items()
        }
    if hidden and isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [merge_redacted(n, o, hidden=True) for n, o in zip(new, old, strict=True)]
    return new


def merge_redacted_text(
    new: str, old: str | None, *, name: str | None = None, hidden: bool = False
) -> str:
    """:func:`merge_redacted` for values stored as text that may hold JSON."""
    if old is None or REDACTED not in new:
        return new
    hidden = hidden or is_sensitive(name)
    if hidden and new == REDACTED:
        return old
    try:
        new_doc, old_doc = json.loads(new), json.loads(old)
    except ValueError:
        return new
    if not isinstance(new_doc, dict | list):
        return new
    return json.dumps(merge_redacted(new_doc, old_doc, name=name, hidden=hidden))


def _forms(secret: str) -> Iterable[str]:
    """The secret and the ways it appears when printed: repr/str-escaped, JSON-escaped,
    URL-quoted (in connection URIs)."""
    yield secret
    yield repr(secret)[1:-1]
    yield secret.encode("unicode_escape").decode("ascii")
    yield json.dumps(secret)[1:-1]
    yield quote(secret, safe="")
    yield quote_plus(secret, safe="")
    if "\n" in secret:  # a multi-line secret (a private key) is logged line by line
        yield from secret.splitlines()


class Masker:
    """Replaces known secret values in text with ``***``.

    Values shorter than :data:`MIN_MASK_LENGTH` characters, or too common to be secret
    (``true``, ``null``, ...), are not masked. Longer values are matched first, so a
    secret containing another is replaced whole.
    """

    def __init__(self, secrets: Iterable[str] = (), *, min_length: int = MIN_MASK_LENGTH) -> None:
        self._min_length = min_length
        self._patterns: set[str] = set()
        self._regex: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    def __len__(self) -> int:
        return len(self._patterns)

    def add(self, secret: Any) -> None:
        """Mask ``secret`` from now on (strings; dicts and lists are walked)."""
        if isinstance(secret, dict):
            for v in secret.values():
                self.add(v)
            return
        if isinstance(secret, list | tuple | set | frozenset):
            for v in secret:
                self.add(v)
            return
        if not isinstance(secret, str):
            return
        added = False
        for form in _forms(secret):
            form = form.strip() if "\n" in secret else form
            if len(form) < self._min_length or form.lower() in _NEVER_MASK:
                continue
            if form not in self._patterns:
                self._patterns.add(form)
                added = True
        if added:
            ordered = sorted(self._patterns, key=len, reverse=True)
            self._regex = re.compile("|".join(re.escape(p) for p in ordered))

    def mask(self, text: str) -> str:
        """``text`` with every known secret (in any of its forms) replaced by ``***``."""
        if self._regex is None or not text:
            return text
        return self._regex.sub(REDACTED, text)

    def __call__(self, text: str) -> str:
        return self.mask(text)

    def mask_deep(self, value: Any) -> Any:
        """A copy of a JSON-like value with :meth:`mask` applied to every string in it
        (keys included), e.g. an error message or rendered template fields."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask_deep(k): self.mask_deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_deep(v) for v in value]
        return value


__all__ = [
    "MIN_MASK_LENGTH",
    "REDACTED",
    "SENSITIVE_NAMES",
    "Cipher",
    "FernetKeyError",
    "Masker",
    "generate_key",
    "is_sensitive",
    "merge_redacted",
    "merge_redacted_text",
    "redact",
    "redact_json_text",
]
