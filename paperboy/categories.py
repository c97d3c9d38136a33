"""arXiv's category taxonomy and the one check every entry point uses for a category a person typed.

A filter, a digest preference, a followed arXiv listing or a command-line option names either an archive
(`cs`, `hep-th`) or a category (`cs.CL`, `cond-mat.mes-hall`) of arXiv's taxonomy
(https://arxiv.org/category_taxonomy), current or retired. Anything else is refused with a message that says
what was expected — `cs.XX` used to be accepted and then silently matched nothing. Case is forgiven and
corrected (`CS.cl` → `cs.CL`). Pure: imports nothing from paperboy.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_CHARS = 40  # longer than any category: refused before any other work

# archive -> its subject classes ("" for an archive arXiv does not divide)
_TAXONOMY: dict[str, str] = {
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS "
    "PF PL RO SC SD SE SI SY",
    "econ": "EM GN TH",
    "eess": "AS IV SP SY",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn "
    "gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "stat": "AP CO ME ML OT TH",
    # archives without subject classes
    "gr-qc": "",
    "hep-ex": "",
    "hep-lat": "",
    "hep-ph": "",
    "hep-th": "",
    "math-ph": "",
    "nucl-ex": "",
    "nucl-th": "",
    "quant-ph": "",
    # retired archives: old papers still carry them
    "acc-phys": "",
    "adap-org": "",
    "alg-geom": "",
    "ao-sci": "",
    "atom-ph": "",
    "bayes-an": "",
    "chao-dyn": "",
    "chem-ph": "",
    "cmp-lg": "",
    "comp-gas": "",
    "dg-ga": "",
    "funct-an": "",
    "mtrl-th": "",
    "patt-sol": "",
    "plasm-ph": "",
    "q-alg": "",
    "solv-int": "",
    "supr-con": "",
}
ARCHIVES = frozenset(_TAXONOMY)
# lower-cased name -> canonical name, for archives and categories alike
_CANONICAL: dict[str, str] = {a: a for a in _TAXONOMY} | {
    f"{a}.{s}".lower(): f"{a}.{s}" for a, subjects in _TAXONOMY.items() for s in subjects.split()
}
EXAMPLE = "an arXiv category such as cs.CL or an archive such as cs or hep-th"


def check_category(value: str) -> str:
    """`value` as arXiv spells it; ValueError (its message fit to show) when arXiv has no such category."""
    text = value.strip()
    found = _CANONICAL.get(text.lower()) if len(text) <= MAX_CHARS else None
    if found is None:
        shown = text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "…"
        raise ValueError(f"{shown!r} is not {EXAMPLE}")
    return found


def check_categories(values: Iterable[str]) -> tuple[str, ...]:
    """Each of `values` checked (the first bad one raises), in order, without repeats."""
    return tuple(dict.fromkeys(check_category(v) for v in values))
