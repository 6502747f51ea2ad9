"""Retrieval stage."""
