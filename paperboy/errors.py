"""Domain errors. Operations raise these; the web layer and the CLI map them to statuses and exit codes."""


class PaperboyError(Exception):
    """Base class of every error paperboy raises on purpose."""


class NotFound(PaperboyError):
    """A paper, day or other thing that was asked for does not exist."""


class InvalidInput(PaperboyError):
    """A parameter, form field or file from outside is malformed; the message says what is wrong."""


class SourceError(PaperboyError):
    """An upstream source failed: unreachable, an error status, or a malformed / truncated response."""


class UpstreamRateLimited(SourceError):
    """The upstream kept answering 429 after every retry we were allowed."""


class IndexUnusable(PaperboyError):
    """A search index is missing, corrupt, truncated or built for another model: rebuild it from the DB."""


class EmbeddingUnavailable(PaperboyError):
    """The sentence-embedding model cannot be loaded (not installed, unknown name, unreadable files)."""


class FieldInvalid(InvalidInput):
    """A form field is malformed; `field` names it so that the form can show the message beside it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Conflict(PaperboyError):
    """The change clashes with what is stored (a taken username, a paper already submitted)."""


class AlreadySubmitted(Conflict):
    """The paper submitted is already on the daily list; `arxiv_id` names it, so a form can link to it."""

    def __init__(self, message: str, arxiv_id: str) -> None:
        super().__init__(message)
        self.arxiv_id = arxiv_id


class Unauthorized(PaperboyError):
    """The request needs a signed-in member (or a valid API token) and has none."""


class Forbidden(PaperboyError):
    """The member is signed in but may not do this (not theirs, not an admin, a bad CSRF token)."""


class RateLimited(PaperboyError):
    """Too many attempts of one kind in a window; `retry_after` seconds until the next is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
