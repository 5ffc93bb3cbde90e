"""Exact and MinHash/LSH fuzzy deduplication (the dedup issue fills this package)."""
