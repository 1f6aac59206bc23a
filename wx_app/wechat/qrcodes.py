"""Permanent scene QR codes: one per organisation (`org:<id>`) and the account's follow code.

WeChat gives a ticket and the URL its QR code encodes. The image is drawn here from that URL
(sharp at any print size, no second call to WeChat), with a caption under it: the
organisation's full name, which needs a CJK font. Without one the caption falls back to ASCII
and the caller gets a warning to pass on.

https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
"""

from __future__ import annotations

import functools
import glob
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import qrcode
from flask import current_app
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from qrcode.constants import ERROR_CORRECT_M
from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..models import Organisation
from .client import client

log = logging.getLogger(__name__)

FOLLOW_SCENE = "follow"
FOLLOW_CAPTION = "长按识别二维码，关注公众号"
FOLLOW_CAPTION_ASCII = "Scan with WeChat to follow"
ORGANISATION_HINT = "微信扫一扫，关注公众号"
ORGANISATION_HINT_ASCII = "Scan with WeChat"
#: Pixels per QR module and the quiet zone in modules: about 7 cm wide at 300 dpi.
BOX_SIZE = 16
BORDER = 4
ERROR_CORRECTION = ERROR_CORRECT_M
#: Where CJK fonts are usually found (Debian's fonts-noto-cjk first).
FONT_PATTERNS = (
    "/usr/share/fonts/**/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/**/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/**/NotoSerifCJK*.tt[cf]",
    "/usr/share/fonts/**/*CJK*.[ot]t[cf]",
    "/usr/share/fonts/**/wqy-*.tt[cf]",
    "/usr/share/fonts/**/DroidSansFallback*.ttf",
)
#: Of a font collection's faces, the one for simplified Chinese.
PREFERRED_FACE = "SC"


@dataclass(frozen=True)
class Ticket:
    ticket: str
    url: str
    scene: str


@dataclass(frozen=True)
class Poster:
    """A printable PNG; `warning` says when the caption could not be drawn in Chinese."""

    png: bytes
    width: int
    height: int
    qr_height: int
    warning: str | None = None


def permanent_ticket(scene: str) -> Ticket:
    """POST cgi-bin/qrcode/create with QR_LIMIT_STR_SCENE: the scene's permanent ticket.

    https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
    """
    answer = client().post("qrcode/create", data={
        "action_name": "QR_LIMIT_STR_SCENE",
        "action_info": {"scene": {"scene_str": scene}},
    })
    return Ticket(answer["ticket"], answer["url"], scene)


def organisation_scene(organisation: Organisation) -> str:
    return f"org:{organisation.id}"


def find_organisation(reference: str) -> Organisation:
    """The organisation with this id, or else with exactly this full name (单位全称)."""
    reference = reference.strip()
    organisation = None
    if reference.isdigit():
        organisation = db.session.get(Organisation, int(reference))
    if organisation is None:
        organisation = db.session.scalars(
            select(Organisation).where(Organisation.name == reference)).first()
    if organisation is None:
        raise NotFound(f"no organisation has the id or full name {reference!r}",
                       code="organisation_not_found")
    return organisation


def organisation_ticket(organisation: Organisation) -> Ticket:
    """The organisation's permanent ticket; its scene is recorded on the organisation."""
    scene = organisation_scene(organisation)
    ticket = permanent_ticket(scene)

    if organisation.qr_scene != scene:
        organisation.qr_scene = scene
        db.session.flush()
        log.info("organisation %s given QR scene %s", organisation.id, scene)
    return ticket


def organisation_poster(organisation: Organisation, ticket: Ticket) -> Poster:
    """The printable code: QR, the organisation's full name, and how to use it."""
    return render_poster(
        ticket.url, [organisation.name, ORGANISATION_HINT],
        ascii_caption=[f"Organisation #{organisation.id} ({ticket.scene})",
                       ORGANISATION_HINT_ASCII],
        title=organisation.name)


def follow_poster(ticket: Ticket) -> Poster:
    """The account's follow code for the H5 pages."""
    return render_poster(ticket.url, [FOLLOW_CAPTION], ascii_caption=[FOLLOW_CAPTION_ASCII],
                         title="follow")


def follow_poster_path() -> Path:
    """Where the follow code is kept for /h5/follow-qr.png."""
    return Path(current_app.config["INSTANCE_PATH"]) / "qrcodes" / "follow.png"


def qr_image(url: str) -> Image.Image:
    """The QR code of `url`, black on white, BOX_SIZE pixels a module, BORDER modules quiet."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=BOX_SIZE, border=BORDER)
    code.add_data(url)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")


def render_poster(url: str, caption: list[str], *, ascii_caption: list[str], title: str,
                  font_patterns: tuple[str, ...] = FONT_PATTERNS) -> Poster:
    """The QR code of `url` with `caption` under it, as PNG bytes.

    Without a CJK font the `ascii_caption` is printed instead, and the Poster says so.
    """
    found = find_cjk_font(font_patterns)
    warning = None
    if found is None:
        warning = ("no CJK font found (install fonts-noto-cjk); the caption is printed as "
                   f"{' / '.join(ascii_caption)!r} instead of the Chinese text")
        caption = ascii_caption
    code = qr_image(url)
    width = code.width
    name_font, hint_font = (_font(found, size) for size in (width // 16, width // 26))

    lines = [(line, name_font) for line in _wrap(caption[0], name_font, width * 0.88)]
    lines += [(line, hint_font) for text in caption[1:]
              for line in _wrap(text, hint_font, width * 0.88)]
    spacing = width // 60
    text_height = sum(_line_height(font) + spacing for _, font in lines)
    poster = Image.new("RGB", (width, code.height + text_height + BOX_SIZE * BORDER), "white")
    poster.paste(code, (0, 0))

    draw = ImageDraw.Draw(poster)
    y = code.height
    for line, font in lines:
        draw.text((width / 2, y), line, font=font, fill="black", anchor="ma")
        y += _line_height(font) + spacing

    info = PngInfo()
    info.add_itxt("Title", title)
    info.add_itxt("Comment", url)
    buffer = io.BytesIO()
    poster.save(buffer, format="PNG", pnginfo=info, optimize=True)
    return Poster(buffer.getvalue(), poster.width, poster.height, code.height, warning)


def _font(found: tuple[str, int] | None, size: int) -> ImageFont.FreeTypeFont:
    if found is None:
        return ImageFont.load_default(size=size)
    path, index = found
    return ImageFont.truetype(path, size, index=index)


def _line_height(font) -> int:
    left, top, right, bottom = font.getbbox("国Ag")
    return bottom


def _wrap(text: str, font, max_width: float) -> list[str]:
    """`text` cut into lines no wider than `max_width` (Chinese breaks between characters)."""
    lines, line = [], ""
    for character in text:
        if line and font.getlength(line + character) > max_width:
            lines.append(line)
            line = character.lstrip()
        else:
            line += character
    return [*lines, line] if line else lines


@functools.lru_cache(maxsize=8)
def find_cjk_font(patterns: tuple[str, ...] = FONT_PATTERNS) -> tuple[str, int] | None:
    """(path, face index) of an installed font that can draw Chinese, or None."""
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            if os.path.isfile(path):
                return path, _preferred_face(path)
    log.warning("no CJK font found (searched: %s)", ", ".join(patterns) or "nowhere")
    return None


def _preferred_face(path: str) -> int:
    """In a font collection (.ttc), the simplified-Chinese face; else the first."""
    if not path.lower().endswith(".ttc"):
        return 0
    for index in range(16):
        try:
            family, _style = ImageFont.truetype(path, 12, index=index).getname()
        except OSError:
            break
        if family and family.split()[-1] == PREFERRED_FACE:
            return index
    return 0


def write_png(path: Path, png: bytes) -> None:
    """Write `png` at `path` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(png)
    os.replace(partial, path)
