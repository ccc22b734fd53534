"""shoerecon: single-view textured shoe reconstruction, trained through a differentiable renderer."""
__version__ = "0.1.0"
