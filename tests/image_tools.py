"""Real pictures for tests, made with Pillow: what a profile picture check decodes."""

import io

from PIL import Image


def picture(kind: str, width: int, height: int) -> bytes:
    """An image of that size in that format ("PNG", "JPEG", "GIF", ...)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 80)).save(out, kind)
    return out.getvalue()


def square_png(size: int) -> bytes:
    return picture("PNG", size, size)
