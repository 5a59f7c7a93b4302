"""ledgerflow.cli: the ``ledgerflow`` console command.

The CLI is the composition root: it builds :class:`~ledgerflow.common.settings.Settings`
from the environment, imports a service's entry point only when that service is asked
for, and owns process-level concerns (signals, logging, exit codes). Services never
import each other; only this package knows about all of them.
"""
