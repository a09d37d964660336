"""Dashboards: the resource, its access rules and (later) its tiles."""
