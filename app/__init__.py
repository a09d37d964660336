"""Tilecast: a self-hosted, PostHog-compatible dashboards service."""
