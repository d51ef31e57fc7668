"""Tested helpers behind the supplement's notebooks (one module per concern)."""
