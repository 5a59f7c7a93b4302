"""The one exception type the CLI turns into a one-line message and an exit code."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report to the user as one line, without a traceback.

    ``exit_code`` is what the process exits with (1 unless a command documents another).
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
