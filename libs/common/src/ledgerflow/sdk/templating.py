"""Jinja rendering of a task's ``template_fields``, with Airflow's rules.

:func:`render_template_fields` does what Airflow's ``Templater`` and
``DAG.get_template_env`` do together:

- every attribute named in ``task.template_fields`` is rendered recursively (strings;
  lists, tuples, named tuples, dicts and sets of them; objects with their own
  ``template_fields``); falsy values are left alone;
- an ``XComArg`` (anything with Airflow's ``resolve``/``iter_references`` pair) is
  replaced by its value, which is not rendered again;
- a string ending in one of ``task.template_ext`` is a template *file*, looked up in the
  DAG file's folder and then in ``dag.template_searchpath`` (relative entries are
  relative to the DAG file's folder: that is where the runner writes the DAG's
  ``extra_files``), then ``task.prepare_template()`` runs, as in Airflow;
- the environment is Airflow's: sandboxed, ``StrictUndefined`` unless the DAG sets
  ``template_undefined``, the ``do`` extension, no cache, ``dag.jinja_environment_kwargs``
  on top, ``user_defined_macros`` and ``user_defined_filters``, the ``ds``, ``ds_nodash``,
  ``ts``, ``ts_nodash`` and ``ts_nodash_with_tz`` filters, and a ``NativeEnvironment``
  with ``render_template_as_native_obj`` (the task's, when set, else the DAG's).

jinja2 is imported only when a string actually needs it. A string without ``{{``,
``{%`` or ``{#`` renders to itself with Jinja's newline handling, which is computed
here directly: most bash commands never load Jinja.

A failure raises :class:`TemplateRenderError`, whose message names the task, the field,
the template (file) and the line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

RENDERED_FIELD_MAX_BYTES = 16 * 1024
"""Each string of ``rendered_fields`` in the outcome is cut to this many UTF-8 bytes."""

_MARKERS = ("{{", "{%", "{#")
_TEMPLATE_FRAMES = ("top-level template code", "template")


class TemplateRenderError(Exception):
    """A template field could not be rendered. ``error_type`` is the original error's
    class name (``UndefinedError``, ``TemplateSyntaxError``, ...)."""

    def __init__(self, message: str, *, error_type: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retryable = retryable


# --------------------------------------------------------------------------- filters
def ds_filter(value: date | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


def ds_nodash_filter(value: date | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%d")


def ts_filter(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def ts_nodash_filter(value: date | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%dT%H%M%S")


def ts_nodash_with_tz_filter(value: date | None) -> str | None:
    return None if value is None else value.isoformat().replace("-", "").replace(":", "")


FILTERS: dict[str, Callable[[Any], str | None]] = {
    "ds": ds_filter,
    "ds_nodash": ds_nodash_filter,
    "ts": ts_filter,
    "ts_nodash": ts_nodash_filter,
    "ts_nodash_with_tz": ts_nodash_with_tz_filter,
}

_environment_classes: tuple[type, type] | None = None


def _classes() -> tuple[type[jinja2.Environment], type[jinja2.Environment]]:
    """Airflow's two environments, defined on first use so that jinja2 loads lazily."""
    global _environment_classes
    if _environment_classes is None:
        import jinja2.nativetypes
        import jinja2.sandbox

        class _AirflowFilters:
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.filters.update(FILTERS)  # type: ignore[attr-defined]

            def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
                # Airflow allows ``_private`` attributes; dunders stay blocked.
                return not jinja2.sandbox.is_internal_attribute(obj, attr)

        class SandboxedEnvironment(_AirflowFilters, jinja2.sandbox.SandboxedEnvironment):
            """The default environment (as Airflow's)."""

        class NativeEnvironment(_AirflowFilters, jinja2.nativetypes.NativeEnvironment):
            """``render_template_as_native_obj=True``: templates render to Python objects."""

        _environment_classes = (SandboxedEnvironment, NativeEnvironment)
    return _environment_classes


def template_searchpath(dag: Any) -> list[str]:
    """The DAG file's folder, then ``dag.template_searchpath`` (relative to that folder)."""
    fileloc = getattr(dag, "fileloc", None) or ""
    folder = os.path.dirname(os.path.abspath(fileloc)) if fileloc else os.getcwd()
    extra = getattr(dag, "template_searchpath", None) or []
    if isinstance(extra, str):
        extra = [extra]
    return [folder, *(os.path.join(folder, os.fspath(p)) for p in extra)]


def renders_native(dag: Any, task: Any = None) -> bool:
    """Whether templates render to Python objects: the task's
    ``render_template_as_native_obj`` when set, else the DAG's."""
    own = getattr(task, "render_template_as_native_obj", None)
    return bool(own if own is not None else getattr(dag, "render_template_as_native_obj", False))


def get_template_env(dag: Any, task: Any = None) -> jinja2.Environment:
    """The Jinja environment for ``dag`` (Airflow's ``DAG.get_template_env``; ``task``
    may override native rendering)."""
    import jinja2

    sandboxed, native = _classes()
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(template_searchpath(dag)),
        "undefined": getattr(dag, "template_undefined", None) or jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
    }
    options.update(getattr(dag, "jinja_environment_kwargs", None) or {})
    cls = native if renders_native(dag, task) else sandboxed
    env = cls(**options)
    env.globals.update(getattr(dag, "user_defined_macros", None) or {})
    env.filters.update(getattr(dag, "user_defined_filters", None) or {})
    return env


def _plain_text(value: str) -> str:
    """What Jinja renders a string without any markup to: line endings normalised to
    ``\\n`` and one trailing newline dropped (``keep_trailing_newline=False``)."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return text[:-1] if text.endswith("\n") else text


def _is_resolvable(value: Any) -> bool:
    """An XComArg, or anything with Airflow's ``ResolveMixin`` interface."""
    cls = type(value)
    return callable(getattr(cls, "resolve", None)) and (
        cls.__name__.endswith("XComArg") or callable(getattr(cls, "iter_references", None))
    )


class _Renderer:
    def __init__(self, task: Any, context: Mapping[str, Any]) -> None:
        self.task = task
        self.context = context
        self.dag = context.get("dag") or getattr(task, "dag", None)
        self.template_ext = tuple(getattr(task, "template_ext", None) or ())
        self.native = renders_native(self.dag, task)
        self.custom_syntax = bool(getattr(self.dag, "jinja_environment_kwargs", None))
        self._env: jinja2.Environment | None = None
        # The template being rendered (file name or None, source): for error messages.
        self.current: tuple[str | None, str] | None = None
        # field name -> template file its text came from (resolve_template_files).
        self.files: dict[str, str] = {}

    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            self._env = get_template_env(self.dag, self.task)
        return self._env

    def relative(self, filename: str) -> str:
        """A template file's name as the DAG author wrote it (relative to the search
        path entry it was found in)."""
        if os.path.isabs(filename):
            for root in sorted(template_searchpath(self.dag), key=len, reverse=True):
                if filename.startswith(root.rstrip(os.sep) + os.sep):
                    return os.path.relpath(filename, root)
        return filename

    def is_template_file(self, value: Any) -> bool:
        return (
            bool(self.template_ext) and isinstance(value, str) and value.endswith(self.template_ext)
        )

    def load_file(self, name: str) -> str | None:
        import jinja2

        try:
            return self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
        except jinja2.TemplateNotFound:
            return None  # rendering reports it, naming the field and the search path

    def resolve_template_files(self, fields: Iterable[str]) -> None:
        """Replace template-file names by the files' text (Airflow does this as the DAG
        is loaded), then let the operator adjust the text (``prepare_template``)."""
        if not self.template_ext:
            return
        for name in fields:
            content = getattr(self.task, name, None)
            if isinstance(content, str) and self.is_template_file(content):
                text = self.load_file(content)
                if text is not None:
                    setattr(self.task, name, text)
                    self.files[name] = content
            elif isinstance(content, list):
                for i, item in enumerate(content):
                    if self.is_template_file(item):
                        text = self.load_file(item)
                        if text is not None:
                            content[i] = text
        prepare = getattr(self.task, "prepare_template", None)
        if callable(prepare):
            prepare()

    def render(self, value: Any, seen: set[int]) -> Any:
        if isinstance(value, str):
            return self.render_string(value)
        if _is_resolvable(value):
            return value.resolve(self.context)
        if id(value) in seen:
            return value
        if value.__class__ is tuple:
            return tuple(self.render(v, seen) for v in value)
        if isinstance(value, tuple):  # named tuples
            return value.__class__(*(self.render(v, seen) for v in value))
        if isinstance(value, list):
            return [self.render(v, seen) for v in value]
        if isinstance(value, dict):
            return {k: self.render(v, seen) for k, v in value.items()}
        if isinstance(value, set | frozenset):
            return value.__class__(self.render(v, seen) for v in value)
        nested = getattr(value, "template_fields", None)
        if nested and not isinstance(value, type):
            seen.add(id(value))
            for name in nested:
                inner = getattr(value, name)
                if _truthy(inner):
                    setattr(value, name, self.render(inner, seen))
        return value

    def render_string(self, value: str) -> Any:
        if self.is_template_file(value):
            template = self.env.get_template(value)
            self.current = (template.filename, self.load_file(value) or "")
        elif self.native or self.custom_syntax or any(m in value for m in _MARKERS):
            self.current = (None, value)
            template = self.env.from_string(value)
        else:
            return _plain_text(value)
        return template.render(self.context)

    def error(self, field: str, exc: Exception) -> TemplateRenderError:
        import jinja2

        task_id = getattr(self.task, "task_id", "?")
        filename, lineno = _template_location(exc)
        source, shown = None, None
        if filename in (None, "<template>", "<unknown>"):  # the string being rendered
            if self.current is not None:
                shown, source = self.current
            if shown is None:
                shown = self.files.get(field)  # a template file read before rendering
        else:
            shown = filename
            if self.current is not None and self.current[0] == filename:
                source = self.current[1]
            else:
                try:
                    with open(filename, encoding="utf-8") as f:
                        source = f.read()
                except OSError:
                    pass
        shown = self.relative(shown) if shown else None
        where = f" ({shown})" if shown else ""
        if lineno is not None:
            lines = source.splitlines() if source else []
            where = f" ({shown + ' ' if shown else ''}line {lineno}"
            if 0 < lineno <= len(lines):
                where += f": {lines[lineno - 1].strip()[:200]!r}"
            where += ")"
        detail = str(exc)
        if isinstance(exc, jinja2.TemplateNotFound):
            searchpath = getattr(self.dag, "template_searchpath", None) or []
            searchpath = [searchpath] if isinstance(searchpath, str) else list(searchpath)
            detail = (
                f"template file {exc.name!r} not found in the DAG file's folder or in "
                f"template_searchpath {searchpath} (ship it with the DAG file as an extra "
                "file, or set template_searchpath)"
            )
        elif isinstance(exc, jinja2.TemplateSyntaxError):
            detail = exc.message or str(exc)
        message = (
            f"Exception rendering Jinja template for task {task_id!r}, field {field!r}"
            f"{where}: {type(exc).__name__}: {detail}"
        )
        # A broken or missing template stays broken on retry; other errors (a variable
        # that does not exist yet, a flaky macro) may not.
        retryable = not isinstance(exc, jinja2.TemplateSyntaxError | jinja2.TemplateNotFound)
        return TemplateRenderError(message, error_type=type(exc).__name__, retryable=retryable)


def _template_location(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file (``"<template>"`` for a string) and line an error points at."""
    lineno = getattr(exc, "lineno", None)
    if lineno is not None:  # TemplateSyntaxError
        return getattr(exc, "filename", None), lineno
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in _TEMPLATE_FRAMES or code.co_name.startswith(("block ", "macro ")):
            found = (code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _truthy(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:  # e.g. a DataFrame: render it anyway
        return True


def render_template_fields(
    task: Any, context: Mapping[str, Any], rendered: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Render ``task.template_fields`` in place; return the JSON-safe rendered values
    (also written into ``rendered`` as each field is done, so that a caller still has
    the fields rendered before a failure). Raises :class:`TemplateRenderError`."""
    rendered = {} if rendered is None else rendered
    fields = list(getattr(task, "template_fields", None) or ())
    if not fields:
        return rendered
    renderer = _Renderer(task, context)
    for name in fields:
        if not hasattr(task, name):
            raise TemplateRenderError(
                f"{name!r} is configured as a template field but {type(task).__name__} "
                "does not have this attribute",
                error_type="AttributeError",
                retryable=False,
            )
    if renderer.template_ext and any(
        renderer.is_template_file(v) or isinstance(v, list)
        for v in (getattr(task, n) for n in fields)
    ):
        renderer.resolve_template_files(fields)
    secrets = _secrets()
    for name in fields:
        value = getattr(task, name)
        if _truthy(value):
            renderer.current = None
            try:
                value = renderer.render(value, set())
            except TemplateRenderError:
                raise
            except Exception as e:
                raise renderer.error(name, e) from e
            setattr(task, name, value)
        rendered[name] = json_safe(value, name, secrets)
    return rendered


# --------------------------------------------------------------------------- rendered fields
def _secrets() -> list[str]:
    import sys

    models = sys.modules.get("ledgerflow.sdk.models")
    return models.secret_values() if models is not None else []


def _sensitive(name: str | None) -> bool:
    if not name:
        return False
    from ledgerflow.sdk.models import is_sensitive_name

    return is_sensitive_name(name)


def truncate(text: str, limit: int = RENDERED_FIELD_MAX_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes, saying so."""
    if len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore") + f"... [truncated, {len(data)} bytes]"


def json_safe(
    value: Any, name: str | None = None, secrets: list[str] | None = None, depth: int = 0
) -> Any:
    """``value`` as JSON data for the outcome's ``rendered_fields``: strings cut to
    :data:`RENDERED_FIELD_MAX_BYTES`, known secrets (connection passwords, variables with
    sensitive names) and fields with sensitive names replaced by ``***``, everything that
    is not JSON shown as its ``str()``."""
    if _sensitive(name):
        return "***" if value not in (None, "", [], {}) else value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, str):
        for secret in secrets or ():
            if secret in value:
                value = value.replace(secret, "***")
        return truncate(value)
    if depth > 20:
        return truncate(str(value))
    if isinstance(value, dict):
        return {str(k): json_safe(v, str(k), secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, name, secrets, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return [json_safe(v, name, secrets, depth + 1) for v in sorted(value, key=repr)]
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [json_safe(v, name, secrets, depth + 1) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return json_safe(str(value), name, secrets, depth + 1)
