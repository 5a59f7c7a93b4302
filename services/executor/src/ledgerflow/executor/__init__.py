"""ledgerflow.executor: runs task attempts from a work queue in child processes.

Entry point: :func:`ledgerflow.executor.service.run`. See ``services/executor/README.md``.
"""
