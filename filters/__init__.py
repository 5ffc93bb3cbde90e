"""Per-document judges: language ID (filters/langid.py), URL filters (filters/urls.py),
rule filters (filters/rules.py) and the quality classifier (filters/classifier.py)."""
