"""Safe XML for the arXiv sources: defusedxml parsing and the namespaces arXiv's feeds use.

Upstream XML is parsed with `defusedxml.ElementTree.fromstring` with DTDs forbidden: no entity is ever
expanded and no external resource is ever fetched, so a billion-laughs or XXE payload is a SourceError, not a
hung worker or a leaked file. arXiv's own feeds carry no DTD. Bodies without an `<?xml …?>` declaration (as
the RSS fixtures are) parse the same; whitespace or a byte-order mark before the declaration is tolerated.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from paperboy.errors import SourceError

ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
DC = "http://purl.org/dc/elements/1.1/"
OAI = "http://www.openarchives.org/OAI/2.0/"
ARXIV_RAW = "http://arxiv.org/OAI/arXivRaw/"
ARXIV_OAI = "http://arxiv.org/OAI/arXiv/"

# Prefixes for ElementTree paths, e.g. `el.find("atom:entry", NS)`.
NS = {
    "atom": ATOM,
    "arxiv": ARXIV,
    "opensearch": OPENSEARCH,
    "dc": DC,
    "oai": OAI,
    "raw": ARXIV_RAW,
    "ax": ARXIV_OAI,
}

Element = ET.Element

_BOM = b"\xef\xbb\xbf"


def parse_xml(body: bytes | str, where: str) -> ET.Element:
    """The root element of an upstream XML body; SourceError when it is unsafe, malformed or truncated."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    stripped = body.lstrip()
    if stripped.startswith(_BOM):
        stripped = stripped[len(_BOM) :].lstrip()
    if not stripped:
        raise SourceError(f"{where}: empty response where XML was expected")
    try:
        return SafeET.fromstring(stripped, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SourceError(
            f"{where}: refused unsafe XML ({type(exc).__name__}: DTDs and entities are not allowed)"
        ) from exc
    except ET.ParseError as exc:
        raise SourceError(f"{where}: malformed XML ({exc}); the response may be truncated") from exc


def local_name(el: ET.Element) -> str:
    """The tag without its `{namespace}`."""
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def text_of(el: ET.Element | None) -> str | None:
    """All text inside `el` (stripped), or None when it is absent or empty."""
    if el is None:
        return None
    text = "".join(el.itertext()).strip()
    return text or None


def child_text(parent: ET.Element, path: str) -> str | None:
    """Text of the first element at `path` (prefixes from NS), or None."""
    return text_of(parent.find(path, NS))


def children_text(parent: ET.Element, path: str) -> list[str]:
    """Non-empty texts of every element at `path`, in document order."""
    out = []
    for el in parent.findall(path, NS):
        t = text_of(el)
        if t:
            out.append(t)
    return out
