"""The one root exception of lockflow and the families every service translates into."""


class LockflowError(Exception):
    """Root of every error lockflow raises on purpose."""


class InvalidInput(LockflowError):
    """The user's input (file, parameters, decision) cannot be used; the message says why."""


class TooLarge(InvalidInput):
    """The input exceeds a size limit."""


class NotFound(LockflowError):
    """The named object does not exist (or is not visible to the caller)."""


class Conflict(LockflowError):
    """The request collides with the current state (e.g. a gate already decided)."""


class InvalidEvent(LockflowError):
    """A message on the bus does not match its contract."""


class StageError(LockflowError):
    """A stage could not do its work on this run's data; the run fails with this message."""


class Unavailable(LockflowError):
    """Another service could not be asked (the bus did not take the request); try again later."""


class TimedOut(Unavailable):
    """Another service was asked but did not answer in time."""
