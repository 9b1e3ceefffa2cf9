"""Errors that reach a user as one clear line instead of a traceback."""


class BoltitError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits non-zero."""

    exit_code = 2


class BadInputError(BoltitError):
    """The data, path or arguments given cannot be used."""


class NotFoundError(BoltitError):
    """A model, version, ticket or incident that does not exist."""


class RegistryUnavailableError(BoltitError):
    """The MLflow tracking or registry server cannot be reached."""


class GateFailedError(BoltitError):
    """A validation gate or data-quality suite refused the candidate."""

    exit_code = 1
