"""Content-Security-Policy and the other headers of the pages Tilecast serves.

A dashboard page runs only its own module and stylesheet (`'self'`): no inline script, no `style` attribute
in the markup (the module sets styles through the CSSOM, which CSP allows), no plugins, no `<base>`. It may be
framed by nobody unless its route says otherwise (share and embed pages pass their own `frame_ancestors`).
"""

from collections.abc import Sequence

DENY_FRAMING: tuple[str, ...] = ("'none'",)
ANY_FRAMING: tuple[str, ...] = ("*",)


def _frame_ancestors(sources: Sequence[str]) -> str:
    if not sources:
        raise ValueError("frame_ancestors needs at least one source ('none' to deny framing)")
    for source in sources:
        if not source or any(c in source for c in ";,\r\n\t ") or not source.isascii():
            raise ValueError(f"not a CSP source expression: {source!r}")
    return " ".join(sources)


def dashboard_csp(frame_ancestors: Sequence[str] = DENY_FRAMING) -> str:
    """The policy of the dashboard, share, embed and sign-in pages."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {_frame_ancestors(frame_ancestors)}",
        ]
    )


def docs_csp() -> str:
    """`/docs` and `/redoc`: their bundles and start-up scripts are files served from here (`'self'`). Their
    UI libraries inject `<style>` elements at run time, so styles may be inline; Redoc's search runs in a
    worker made from a `blob:`."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def page_headers(csp: str, *, framed: bool = False) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    if not framed:
        headers["X-Frame-Options"] = "DENY"
    return headers
