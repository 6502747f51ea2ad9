"""Safety stage."""
