"""hwnas package."""
