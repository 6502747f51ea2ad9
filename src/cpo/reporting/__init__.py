"""Reporting stage."""
