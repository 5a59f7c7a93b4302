"""``Variable``, ``Connection`` and ``BaseHook`` as a task sees them (Airflow's names).

A task never talks to a database or to the API: the executor puts the variables and
connections the task may read into the runner request (ADR 0006), and the runner hands
them to :func:`configure` before the DAG file is loaded. A name the request does not
carry falls back to the environment, as in Airflow: ``AIRFLOW_VAR_<KEY>`` (the value)
and ``AIRFLOW_CONN_<CONN_ID>`` (a connection URI, or the connection as JSON). Keys are
upper-cased for the environment lookup, as Airflow does.

Airflow's default secrets search order is environment first, then the metastore; here
the request (what the API stores) comes first and the environment is the fallback, so
a worker's stale environment cannot shadow a value set through the API.

Tasks cannot write: variables and connections are facts written by the API, and a
task's only outputs are its outcome and its log. :meth:`Variable.set` and
:meth:`Variable.delete` say so and fail the attempt without retries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

_NOTSET: Any = object()

# The current attempt's variables and connections (set by the runner, cleared after it).
_variables: dict[str, Any] = {}
_connections: dict[str, Mapping[str, Any]] = {}


def configure(
    variables: Mapping[str, Any] | None, connections: Mapping[str, Mapping[str, Any]] | None
) -> None:
    """Install the request's variables and connections for the attempt about to run."""
    _variables.clear()
    _variables.update(variables or {})
    _connections.clear()
    _connections.update(connections or {})


def reset() -> None:
    """Forget the attempt's variables and connections (an in-process worker calls this)."""
    configure(None, None)


def secret_values() -> list[str]:
    """Connection passwords and the values of variables with sensitive names, longest
    first: what :mod:`ledgerflow.sdk.templating` hides in rendered fields."""
    secrets = {str(c.get("password")) for c in _connections.values() if c.get("password")}
    secrets.update(str(v) for k, v in _variables.items() if is_sensitive_name(k) and v)
    return sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True)


_SENSITIVE_WORDS = (
    "password",
    "secret",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "access_token",
    "private_key",
)


def is_sensitive_name(name: str) -> bool:
    """Whether a variable or field name marks its value as secret (ADR 0006's list)."""
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE_WORDS)


def _not_found_error(message: str) -> Exception:
    # The authoring SDK owns the exception classes; fall back to KeyError until it has
    # AirflowNotFoundException (which Airflow derives from AirflowException).
    from ledgerflow.sdk import exceptions

    cls = getattr(exceptions, "AirflowNotFoundException", None)
    return cls(message) if cls is not None else KeyError(message)


class TaskCannotWriteConfig(Exception):
    """A task tried to change a variable; only the API writes them. Retries cannot help."""

    retryable = False


# --------------------------------------------------------------------------- variables
class Variable:
    """Read a variable: ``Variable.get("key")``, ``Variable.get("key", default=None)``
    (Airflow 3's ``airflow.sdk.Variable``), ``Variable.get("key", default_var=None)``
    (Airflow 2's ``airflow.models.Variable``), ``Variable.get("key", deserialize_json=True)``."""

    @staticmethod
    def get(
        key: str,
        default_var: Any = _NOTSET,
        deserialize_json: bool = False,
        *,
        default: Any = _NOTSET,
    ) -> Any:
        """The variable's value (a string, or the decoded JSON with ``deserialize_json``).

        ``default`` (Airflow 3) and ``default_var`` (Airflow 2) are the same thing: what to
        return, as given (not decoded), when the variable is neither in the request nor in
        the environment; ``None`` is a valid default. Without one, raises ``KeyError``
        naming the key (Airflow's behaviour).
        """
        if default is not _NOTSET and default_var is not _NOTSET:
            raise TypeError(
                "Variable.get() takes default (Airflow 3) or default_var (Airflow 2), not both"
            )
        fallback = default if default is not _NOTSET else default_var
        if key in _variables:
            value = _variables[key]
            # Variables are text; the API stores any other JSON value as its JSON text.
            text = value if isinstance(value, str) else json.dumps(value)
        else:
            env_value = os.environ.get("AIRFLOW_VAR_" + key.upper())
            if env_value is None:
                if fallback is not _NOTSET:
                    return fallback
                raise KeyError(
                    f"Variable {key} does not exist (not given to this task, and no "
                    f"AIRFLOW_VAR_{key.upper()} in the environment)"
                )
            text = env_value
        if not deserialize_json:
            return text
        try:
            return json.loads(text)
        except ValueError as e:
            raise ValueError(f"Variable {key} is not valid JSON: {e}") from None

    @staticmethod
    def set(key: str, value: Any, description: str | None = None, **kwargs: Any) -> None:
        """Not possible in a task: variables are written through the API."""
        raise TaskCannotWriteConfig(
            f"Variable.set({key!r}, ...) is not supported inside a task: variables are "
            "written through the API (POST /api/v2/variables), which records them for "
            "every executor; a task can only read them"
        )

    @staticmethod
    def delete(key: str, **kwargs: Any) -> None:
        """Not possible in a task: variables are deleted through the API."""
        raise TaskCannotWriteConfig(
            f"Variable.delete({key!r}) is not supported inside a task: use the API "
            "(DELETE /api/v2/variables/{key})"
        )


# --------------------------------------------------------------------------- connections
class Connection:
    """A connection's fields, as Airflow's ``Connection``.

    ``extra`` is the JSON text of the extras; ``extra_dejson`` is it decoded.
    ``Connection(conn_id="x", uri="postgres://u:p@host:5432/db")`` parses a URI.
    """

    EXTRA_KEY = "__extra__"

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | dict[str, Any] | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.description = description
        self.conn_type = conn_type
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = int(port) if port is not None and str(port) != "" else None
        self.extra = json.dumps(extra) if isinstance(extra, dict) else extra
        if uri is not None:
            if any(v is not None for v in (conn_type, host, login, password, schema, port)):
                raise ValueError("give a connection either as a uri or as fields, not both")
            self._parse_uri(uri)

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id!r} ({self.conn_type})>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Connection):
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The extras decoded (``{}`` when there are none or they are not a JSON object)."""
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            import logging

            logging.getLogger(__name__).warning(
                "the extra of connection %r is not valid JSON; using {}", self.conn_id
            )
            return {}
        return value if isinstance(value, dict) else {}

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """The connection ``conn_id`` (Airflow 3's ``Connection.get``)."""
        return get_connection(conn_id)

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        """A connection from its JSON form (``AIRFLOW_CONN_X='{"conn_type": ...}'``)."""
        try:
            fields = json.loads(value)
        except ValueError as e:
            raise ValueError(f"connection {conn_id!r} is not valid JSON: {e}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"connection {conn_id!r} must be a JSON object")
        return cls._from_fields(conn_id, fields)

    @classmethod
    def _from_fields(cls, conn_id: str | None, fields: Mapping[str, Any]) -> Connection:
        known = ("conn_type", "description", "host", "login", "password", "schema", "port")
        unknown = set(fields) - {*known, "extra", "conn_id", "uri"}
        if unknown:
            raise ValueError(f"connection {conn_id!r} has unknown fields {sorted(unknown)}")
        if fields.get("uri"):
            return cls(conn_id=conn_id, uri=fields["uri"], description=fields.get("description"))
        return cls(conn_id=conn_id, extra=fields.get("extra"), **{k: fields.get(k) for k in known})

    def _parse_uri(self, uri: str) -> None:
        # Airflow's format: type://login:password@host:port/schema?extra_key=value, where
        # the host may carry its own protocol (type://https://host) and a single
        # ``__extra__`` query parameter holds extras that are not flat strings.
        from urllib.parse import parse_qsl, unquote, urlsplit  # ~2 ms: only when parsing

        if uri.count("://") > 2:
            raise ValueError(f"invalid connection URI for {self.conn_id!r}: too many '://'")
        scheme = urlsplit(uri).scheme
        if not scheme:
            raise ValueError(f"invalid connection URI for {self.conn_id!r}: no type:// prefix")
        self.conn_type = "postgres" if scheme == "postgresql" else scheme.replace("-", "_")
        nested_protocol = uri.count("://") == 2
        rest = uri.replace(f"{scheme}://", "" if nested_protocol else "//", 1)
        if nested_protocol:
            before = rest.split("://", 1)[0]
            if "@" in before or ":" in before:
                raise ValueError(f"invalid connection URI for {self.conn_id!r}")
        parts = urlsplit(rest)
        host = unquote(parts.hostname or "")
        if "/" in host:
            host = parts.netloc
        host = unquote(host.rsplit("@", 1)[-1].split(":", 1)[0])
        self.host = f"{parts.scheme}://{host}" if nested_protocol else host
        self.schema = unquote(parts.path[1:]) if parts.path[1:] else parts.path[1:]
        self.login = unquote(parts.username) if parts.username else parts.username
        self.password = unquote(parts.password) if parts.password else parts.password
        self.port = parts.port
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            self.extra = query[self.EXTRA_KEY] if self.EXTRA_KEY in query else json.dumps(query)

    def get_uri(self) -> str:
        """The connection as Airflow's URI form (round-trips through ``uri=``)."""
        from urllib.parse import quote, urlencode

        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        protocol, host = (
            self.host.split("://", 1) if self.host and "://" in self.host else (None, self.host)
        )
        if protocol:
            uri += f"{protocol}://"
        authority = ""
        if self.login is not None:
            authority += quote(self.login, safe="")
        if self.password is not None:
            authority += ":" + quote(self.password, safe="")
        if authority:
            uri += authority + "@"
        host_block = quote(host, safe="") if host else ""
        if self.port:
            host_block += f"@:{self.port}" if not host_block and not authority else f":{self.port}"
        if self.schema:
            host_block += f"/{quote(self.schema, safe='')}"
        uri += host_block
        if self.extra:
            extras = self.extra_dejson
            flat = all(isinstance(v, str) for v in extras.values()) and bool(extras)
            query = urlencode(extras) if flat else urlencode({self.EXTRA_KEY: self.extra})
            uri += ("?" if self.schema else "/?") + query
        return uri


def get_connection(conn_id: str) -> Connection:
    """The connection ``conn_id`` from the request, else ``AIRFLOW_CONN_<CONN_ID>``.

    Raises ``AirflowNotFoundException`` naming the id when neither has it.
    """
    fields = _connections.get(conn_id)
    if fields is not None:
        return Connection._from_fields(conn_id, fields)
    env_value = os.environ.get("AIRFLOW_CONN_" + conn_id.upper())
    if env_value is None:
        raise _not_found_error(
            f"The conn_id `{conn_id}` isn't defined (not given to this task, and no "
            f"AIRFLOW_CONN_{conn_id.upper()} in the environment)"
        )
    if env_value.lstrip().startswith("{"):
        return Connection.from_json(env_value, conn_id)
    return Connection(conn_id=conn_id, uri=env_value.strip())


class BaseHook:
    """The base of hooks: :meth:`get_connection` is what hooks use to find credentials."""

    def __init__(self, logger_name: str | None = None) -> None:
        self._logger_name = logger_name

    @property
    def log(self) -> Any:
        import logging

        name = self._logger_name or f"{type(self).__module__}.{type(self).__name__}"
        return logging.getLogger(name)

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        """The connection ``conn_id`` (``AirflowNotFoundException`` if it is unknown)."""
        return get_connection(conn_id)

    def get_conn(self) -> Any:
        """The client this hook wraps; hooks implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_conn()")
