"""Insights: saved queries, their results (through the query engine) and their dashboard tiles."""
