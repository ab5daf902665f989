"""Shared building blocks, grouped by role (tooling, lm, data, evaluation, training); the map and
the import order are in :mod:`nvrepro`. Imports nothing from a paper package."""
