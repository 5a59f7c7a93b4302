"""Where the client commands find the API and their credentials.

In order: flags (``--api-url``, ``--token``, ``--api-key``), the environment
(``LEDGERFLOW_API_URL``, ``LEDGERFLOW_TOKEN``, ``LEDGERFLOW_API_KEY``), then the config
file ``$LEDGERFLOW_CONFIG`` or ``$XDG_CONFIG_HOME/ledgerflow/config.toml`` (default
``~/.config/ledgerflow/config.toml``) with ``api_url`` and ``token`` or ``api_key``.
Without a token or key the commands log in with a username and password as before.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerflow.cli.errors import CliError


@dataclass(frozen=True)
class ClientConfig:
    api_url: str | None = None
    token: str | None = None


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("LEDGERFLOW_CONFIG"):
        return Path(environ["LEDGERFLOW_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "ledgerflow" / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's settings; {} when it does not exist; CliError when it is not TOML."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read the config file {path}: {exc}") from exc
    unknown = sorted(set(data) - {"api_url", "token", "api_key"})
    if unknown:
        raise CliError(f"{path}: unknown settings {unknown} (known: api_url, token, api_key)")
    return data


def resolve(
    *,
    api_url_flag: str | None,
    token_flag: str | None,
    environ: Mapping[str, str],
) -> ClientConfig:
    """Flags, then environment, then the config file."""
    needs_file = not (api_url_flag or environ.get("LEDGERFLOW_API_URL")) or not (
        token_flag or environ.get("LEDGERFLOW_TOKEN") or environ.get("LEDGERFLOW_API_KEY")
    )
    file = read_config_file(config_path(environ)) if needs_file else {}
    api_url = api_url_flag or environ.get("LEDGERFLOW_API_URL") or file.get("api_url")
    token = (
        token_flag
        or environ.get("LEDGERFLOW_TOKEN")
        or environ.get("LEDGERFLOW_API_KEY")
        or file.get("token")
        or file.get("api_key")
    )
    return ClientConfig(api_url=str(api_url) if api_url else None, token=token or None)
