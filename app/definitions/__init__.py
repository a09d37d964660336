"""Event and property definitions: what a team has sent, as capture records it."""
