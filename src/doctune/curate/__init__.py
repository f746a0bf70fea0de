"""Curation: embeddings, near-duplicates, clusters, splits, the leakage/coverage report and the map."""
