"""The errors of the ``imgserve`` command: each is one sentence and an exit code.

Exit codes: 0 done (with ``--wait``: the job succeeded), 1 the job did not succeed, 2 a
usage or request error, 3 the service is unreachable, 130 interrupted (Ctrl-C).

Errors::

    CommandError                  (exit_code as a class attribute)
     ├── UsageError           2   a bad command line, setting or job file, or a port in use
     ├── RequestRefused       2   the API refused the request; lines carry its pointers
     ├── ServiceUnreachable   3   the API cannot be reached, does not answer, or answers 503
     └── Interrupted        130   Ctrl-C; the sentence says what goes on without the command
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_NOT_SUCCEEDED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command that Ctrl-C stopped."""


class CommandError(Exception):
    """Raised when a command cannot do what it was asked; str() is the sentence to print."""

    exit_code: ClassVar[int] = EXIT_USAGE

    def __init__(self, sentence: str, lines: tuple[str, ...] = ()) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.lines = lines

    def message(self) -> str:
        """Return the text to print on stderr: the sentence, then any detail lines."""
        return "\n".join(["imgserve: " + self.sentence, *self.lines])


class UsageError(CommandError):
    """Raised when the command line, a setting or a job file cannot be used."""


class RequestRefused(CommandError):
    """Raised when the API answers a request with a problem (other than 503)."""

    def __init__(
        self, sentence: str, lines: tuple[str, ...] = (), *, status: int, detail: str
    ) -> None:
        super().__init__(sentence, lines)
        self.status = status
        self.detail = detail


class ServiceUnreachable(CommandError):
    """Raised when the API cannot be reached, does not answer in time, or answers 503."""

    exit_code = EXIT_UNREACHABLE


class Interrupted(CommandError):
    """Raised when Ctrl-C stops a command; the sentence says what goes on without it."""

    exit_code = EXIT_INTERRUPTED
