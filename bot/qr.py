"""QR codes as PNG images, shared by invitations (Telegram and WeChat) and anything else sent as a picture."""

from __future__ import annotations

import io

import segno


def qr_png(link: str) -> bytes:
    """The link as a QR code image, large enough to scan from a phone screen."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()
