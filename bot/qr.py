"""QR codes as PNG images, shared by invitations (Telegram and WeChat) and anything else sent as a picture."""

from __future__ import annotations

import io


def qr_png(link: str) -> bytes:
    """The link as a QR code image, large enough to scan from a phone screen."""
    # Imported here: most processes never draw a code, and start-up is shorter without it.
    import segno

    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()
