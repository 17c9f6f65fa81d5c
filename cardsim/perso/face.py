"""Card-face images: the persona's own files, or placeholders drawn in the card's formats.

The card stores the photograph as JPEG 2000 (JP2) in greyscale and the rendered text
fields (氏名, 住所, 個人番号, security code) as 1-bit PNGs (facts §5). Placeholders encode
nothing personal beyond what they show: digits are drawn with Pillow's built-in font;
Japanese text, which that font cannot draw, becomes a pattern derived from the text so
that different values give different images.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, ImageFont

PHOTO_SIZE = (90, 110)
MY_NUMBER_IMAGE_SIZE = (72, 12)
SECURITY_CODE_IMAGE_SIZE = (24, 12)
TEXT_IMAGE_HEIGHT = 16


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def digits_png(text: str, size: tuple[int, int]) -> bytes:
    """A 1-bit PNG of ASCII digits fitted into ``size`` (個人番号 72×12, code 24×12)."""
    image = Image.new("1", size, 1)
    draw = ImageDraw.Draw(image)
    font_size = size[1] - 1
    font = ImageFont.load_default(size=font_size)
    while font_size > 6 and draw.textlength(text, font=font) > size[0]:
        font_size -= 1
        font = ImageFont.load_default(size=font_size)
    draw.text((0, 0), text, fill=0, font=font)
    return _png(image)


def text_png(text: str) -> bytes:
    """A 1-bit PNG standing in for rendered Japanese text: one 16×16 cell per character."""
    cells = max(1, len(text))
    image = Image.new("1", (16 * cells, TEXT_IMAGE_HEIGHT), 1)
    pixels = image.load()
    for i, char in enumerate(text):
        if char in ("\u3000", " "):
            continue
        pattern = hashlib.sha256(char.encode()).digest()
        for y in range(2, 14):
            row = pattern[y] << 8 | pattern[y + 14]
            for x in range(2, 14):
                if row >> x & 1:
                    pixels[16 * i + x, y] = 0
    return _png(image)


def placeholder_photo(seed: str) -> bytes:
    """A greyscale JP2 'photograph': a head-and-shoulders silhouette on a seeded background."""
    shade = hashlib.sha256(seed.encode()).digest()[0] // 2 + 96
    image = Image.new("L", PHOTO_SIZE, shade)
    draw = ImageDraw.Draw(image)
    w, h = PHOTO_SIZE
    draw.ellipse((w * 0.3, h * 0.15, w * 0.7, h * 0.55), fill=60)
    draw.ellipse((w * 0.1, h * 0.6, w * 0.9, h * 1.3), fill=40)
    out = io.BytesIO()
    image.save(out, "JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[20])
    return out.getvalue()
