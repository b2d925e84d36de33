"""Errors meant for the person running the pipeline, not for a developer.

The CLI prints a `UserError` without a traceback: its message must say what was wrong, where
(file, record, line or config key) and what to do about it.
"""


class UserError(Exception):
    """A problem with the user's input or configuration that they can fix."""
