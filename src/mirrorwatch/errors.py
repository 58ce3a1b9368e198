"""Error hierarchy. Every error a user can cause is a MirrorwatchError with a one-line message;
the CLI prints it and exits non-zero, the web app turns it into a 4xx."""

from __future__ import annotations


class MirrorwatchError(Exception):
    """Base class: a problem a user can understand and act on."""

    exit_code = 1
    http_status = 400


class InvalidInput(MirrorwatchError):
    """A value given by the user (hash, URL, option) is not acceptable."""


class InvalidHash(InvalidInput):
    """A hash string has the wrong length or characters."""


class InvalidUrl(InvalidInput):
    """A URL is not a Civitai model URL (or not a URL at all)."""


class MalformedFile(MirrorwatchError):
    """A model file or sheet is malformed (truncated, garbage, header lies)."""

    exit_code = 2


class SheetError(MalformedFile):
    """A sheet of removed models cannot be read or has unusable rows."""


class NotFound(MirrorwatchError):
    """A named object (bank, entry, user...) does not exist."""

    exit_code = 3
    http_status = 404


class Conflict(MirrorwatchError):
    """An object already exists or a state transition is not allowed."""

    exit_code = 4
    http_status = 409


class PermissionDenied(MirrorwatchError):
    """The user's role does not allow this action."""

    exit_code = 5
    http_status = 403


class DatabaseUnavailable(MirrorwatchError):
    """The database went away during an operation (a server restart, a lost connection): the
    operation's transaction was rolled back, and it can be run again."""

    exit_code = 6
    http_status = 503
