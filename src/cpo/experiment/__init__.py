"""Experiment stage."""
