"""``with setup_task >> teardown_task:``: work tasks created inside run between them.

Airflow's context manager for setup/teardown tasks. Entering a teardown finds the setups
directly upstream of it; entering a setup finds the teardowns directly downstream of it.
When the block ends, the work tasks created in it without an upstream become downstream
of the setups, and those without a downstream become upstream of the teardowns (the
first and last task created stand in when every task has relatives). Nested blocks link
outer setups before inner ones and inner teardowns before outer ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledgerflow.sdk import _source
from ledgerflow.sdk.dependencies import connect

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator


class _Scope:
    def __init__(self, operator: BaseOperator) -> None:
        if operator.is_teardown:
            self.teardowns = [operator]
            self.setups = [t for t in operator.upstream_list if t.is_setup]
        elif operator.is_setup:
            self.setups = [operator]
            self.teardowns = [t for t in operator.downstream_list if t.is_teardown]
        else:
            raise ValueError("Only setup/teardown tasks can be used as context managers.")
        self.operator = operator
        self.tasks: list[BaseOperator] = []


_scopes: list[_Scope] = []


def enter(operator: BaseOperator) -> None:
    _scopes.append(_Scope(operator))


def register(task: BaseOperator) -> None:
    """Called for every new task: work tasks join the innermost open block."""
    if _scopes and not task.is_setup and not task.is_teardown:
        _scopes[-1].tasks.append(task)


def exit_scope() -> None:
    scope = _scopes.pop()
    _, lineno = _source.user_location()
    work = [t for t in scope.tasks if not t.is_setup and not t.is_teardown]
    if work:
        roots = [t for t in work if not t.upstream_edges] or [work[0]]
        leaves = [t for t in work if not t._downstream] or [work[-1]]
        if scope.setups:
            connect(scope.setups, roots, lineno)
        if scope.teardowns:
            connect(leaves, scope.teardowns, lineno)
    if _scopes:
        outer = _scopes[-1]
        if outer.setups and scope.setups:
            connect(outer.setups, scope.setups, lineno)
        if outer.teardowns and scope.teardowns:
            connect(scope.teardowns, outer.teardowns, lineno)


def reset() -> None:
    """Forget open blocks (the loader calls this after a file fails half-way)."""
    _scopes.clear()
