"""The one base class of pldistill's own errors."""

from __future__ import annotations


class PldistillError(Exception):
    """A problem the user can fix (a recipe key, a file, a run folder); the message says what and where.

    The command line prints its message as one ``pldistill: error: …`` line and exits with status 2,
    without a traceback. Subclasses keep a builtin second base (ValueError, RuntimeError) so that
    ``except ValueError`` callers still catch them.
    """


class RecipeError(PldistillError, ValueError):
    """A recipe that cannot run; the message names the file and the key."""


class DataError(PldistillError, ValueError):
    """Bad data: a file that cannot be read, or files that do not fit together; the message names them."""
