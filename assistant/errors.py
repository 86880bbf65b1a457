"""The failures a person can meet, each with one line that says what to do, and the CLI exit code
it ends with (documented in the README)."""

from __future__ import annotations


class BackpainError(Exception):
    """Base of every error the assistant reports to people; never shown as a traceback."""

    exit_code = 1


class UsageError(BackpainError):
    """A bad command-line argument: a path that is not a folder, an unknown option value."""

    exit_code = 2


class CorpusError(BackpainError):
    """The corpus folder is missing, or holds no readable document."""

    exit_code = 3


class StoreError(BackpainError):
    """The index is missing, corrupt, inconsistent or cannot be written."""

    exit_code = 4


class StoreUnavailable(StoreError):
    """The configured Chroma server does not answer."""

    exit_code = 5


class ReadOnlyIndex(StoreError):
    """The index folder may not be written: rebuilding cannot help, so nothing in it is removed."""
