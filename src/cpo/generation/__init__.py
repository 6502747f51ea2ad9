"""Generation stage."""
