"""Data color themes: the team's own and the global ones."""
