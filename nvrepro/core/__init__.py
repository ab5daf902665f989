"""Shared building blocks. Imports nothing from a paper package."""
