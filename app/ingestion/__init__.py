"""PostHog-compatible event capture: `/capture/`, `/batch/`, `/e/`, `/i/v0/e/`."""
