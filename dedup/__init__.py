"""Deduplication: exact (dedup/exact.py; before extraction, dedup/pre.py) and MinHash/LSH
fuzzy (dedup/minhash.py, dedup/lsh.py). Keys and signatures are computed in the documents
phase (dedup/stage.py), the decisions in a barrier phase after it (dedup/barrier.py)."""
