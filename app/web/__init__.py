"""The live dashboard page (one HTML template, one stylesheet, one JS module; no build step, no CDN), the
offline `/docs` and `/redoc`, and the Content-Security-Policy every page of theirs carries."""
