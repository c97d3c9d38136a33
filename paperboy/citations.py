"""Citations out: a paper or a list of papers as BibTeX, RIS or CSL-JSON (pure functions)."""
