"""Personal API keys, scopes and the principal dependency."""
