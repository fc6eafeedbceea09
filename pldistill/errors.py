"""One base class for every problem a user can fix: the CLI prints its message as one line and exits 2."""

from __future__ import annotations


class PldistillError(Exception):
    """A problem the user can fix (a recipe key, a file, a flag); the message says what and how."""


class RecipeError(PldistillError, ValueError):
    """A recipe that cannot run; the message names the file and the key."""
