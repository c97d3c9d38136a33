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
