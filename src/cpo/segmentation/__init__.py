"""Segmentation stage."""
