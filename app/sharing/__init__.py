"""Sharing: a dashboard's share configuration, its passwords, and the public pages its links open."""
