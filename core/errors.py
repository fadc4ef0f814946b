"""The project's errors, in one place.

    RagEvalError            anything the user can act on; the message says what and where
    ├── SourceError         a file, folder, archive or package that cannot be read
    ├── QuestionFileError   a question file that is refused (names the file and row)
    ├── ConfigError         a setting that is missing or wrong (names the setting)
    ├── ModelError          a model that cannot be loaded or an endpoint that fails (final for that item)
    │   ├── TransientModelError  a failure that may pass (endpoint unreachable, timeout, 429, 5xx, reset
    │   │                        connection, malformed response): kept as *retryable*, so resume redoes it
    │   └── JudgeOutputError     the judge's output could not be parsed into the expected form
    └── NotFoundError       a knowledge base, question set or run that does not exist

Lower layers' exceptions are converted into these where they are caught, so pages and
the CLI show one clear line and never a traceback.
"""


class RagEvalError(Exception):
    """An error the user can fix; str(error) is the whole message."""


class SourceError(RagEvalError):
    """A source (file, folder, archive, package) that cannot be read."""


class QuestionFileError(RagEvalError):
    """A question file that is refused; nothing of it is stored."""


class ConfigError(RagEvalError):
    """A setting that is missing or has a wrong value."""


class ModelError(RagEvalError):
    """A model that cannot be loaded, or an endpoint that fails or cannot be reached."""


class TransientModelError(ModelError):
    """An endpoint failure that may pass by itself. The backend retries it with backoff first
    (`backoff=False`: retrying at once cannot help, e.g. a refused API key, but a resume after
    the setting is fixed can); the item that still fails is stored as retryable."""

    def __init__(self, message: str, backoff: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.backoff = backoff
        self.retry_after = retry_after  # seconds the server asked us to wait, when it said


class JudgeOutputError(ModelError):
    """The judge's output did not parse into the structure the metric needs."""


class NotFoundError(RagEvalError):
    """A named knowledge base, question set or run that does not exist."""
