"""Walking the app's routes, also those inside included routers (FastAPI nests them since 0.16x), and
filling their path templates: what the security matrices (tests/test_security_matrix.py) are generated from,
so that a route added tomorrow is covered without anyone listing it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"\{([^}]+)\}")


def _walk(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def all_routes(app: Any) -> Iterator[Any]:
    """Every route of `app`, flattened."""
    yield from _walk(app.router.routes)


@dataclass(frozen=True)
class Endpoint:
    """One (method, path template) the app answers, e.g. ("PATCH", "/api/comments/{comment_id}")."""

    method: str
    path: str
    route: Any

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def unsafe(self) -> bool:
        return self.method in UNSAFE

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def params(self) -> list[str]:
        """The path parameters, as the template spells them (`arxiv_id:path`)."""
        return _PARAM.findall(self.path)


def endpoints(app: Any) -> list[Endpoint]:
    """Every (method, path) of the app, in routing order; HEAD and OPTIONS left out (HEAD is answered as GET
    by `security.HeadAsGet`), mounts (static files) too: they have no methods."""
    out = []
    for route in all_routes(app):
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or ()):
            if method not in ("HEAD", "OPTIONS"):
                out.append(Endpoint(method, path, route))
    return out


class MissingSample(KeyError):
    """A path parameter no sample value is known for: the route is new; give its parameter a value."""


def fill(path: str, samples: Mapping[str, str]) -> str:
    """`path` with each `{param}` replaced by samples[param] (percent-encoded; `/` kept for `:path` ones)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in samples:
            raise MissingSample(name)
        return quote(samples[name], safe="/" if name.endswith(":path") else "")

    return _PARAM.sub(one, path)
