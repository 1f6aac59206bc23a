"""Scene QR codes: a printable code per organisation, and the account's follow code.

No QR decoder is installed, so a written PNG is read back by its modules: the dark and light
squares sampled at the centre of each module are compared with the module matrix the qrcode
library makes for the ticket URL (at any of the four error-correction levels). That shows the
image carries exactly the QR code of that URL; it does not show that a phone camera reads it.
The caption is checked only for being there (dark pixels below the code), not for its text.
"""

from __future__ import annotations

import io
import re

import pytest
import qrcode
import requests
from PIL import Image, ImageOps
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

from tests import factories
from wx_app.extensions import db
from wx_app.models import Organisation
from wx_app.wechat import qrcodes


def module_matrix(url: str, error_correction: int) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=error_correction, border=0)
    code.add_data(url)
    code.make(fit=True)
    return code.get_matrix()


def read_modules(image: Image.Image, count: int) -> list[list[bool]]:
    """The image's QR modules: sampled at the centre of each square of the code's bounding box."""
    grey = image.convert("L")
    square = grey.crop((0, 0, grey.width, grey.width))
    left, top, right, bottom = ImageOps.invert(square).point(
        lambda value: 255 if value > 128 else 0).getbbox()
    size = (right - left) / count
    return [[grey.getpixel((int(left + (column + 0.5) * size), int(top + (row + 0.5) * size)))
             < 128 for column in range(count)] for row in range(count)]


def encodes(png: bytes, url: str) -> bool:
    """Does the PNG's code carry the QR modules of `url`?"""
    image = Image.open(io.BytesIO(png))
    for level in (ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q, ERROR_CORRECT_H):
        expected = module_matrix(url, level)
        if read_modules(image, len(expected)) == expected:
            return True
    return False


def caption_ink(png: bytes) -> int:
    """How many dark pixels lie below the square QR code (the caption)."""
    image = Image.open(io.BytesIO(png)).convert("L")
    below = image.crop((0, image.width, image.width, image.height))
    return sum(below.histogram()[:128])


def sandbox_tickets(sandbox_url: str) -> list[dict]:
    return requests.get(f"{sandbox_url}/sandbox/api/qrcodes", timeout=5).json()["tickets"]


@pytest.fixture
def qrcode_cli(app):
    def run(*args: str):
        return app.test_cli_runner().invoke(args=["wechat", "qrcode", *args])

    return run


@pytest.fixture
def hospital(ctx) -> Organisation:
    made = factories.organisation("重庆市渝北区人民医院")
    db.session.commit()
    return made


def test_an_organisation_code_is_written_and_carries_the_ticket_url(qrcode_cli, hospital,
                                                                     tmp_path, sandbox_url):
    """Does `wechat qrcode ORG` store the scene and write a PNG of the permanent ticket's URL?"""
    out = tmp_path / "hospital.png"

    result = qrcode_cli(str(hospital.id), "--out", str(out))

    assert result.exit_code == 0, result.output
    scene = f"org:{hospital.id}"
    issued = [ticket for ticket in sandbox_tickets(sandbox_url) if ticket["scene"] == scene]
    assert len(issued) == 1
    assert issued[0]["action_name"] == "QR_LIMIT_STR_SCENE"
    assert issued[0]["expires_at"] is None
    assert f"ticket url: {issued[0]['url']}" in result.output
    db.session.expire_all()
    assert db.session.get(Organisation, hospital.id).qr_scene == scene

    png = out.read_bytes()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.height > image.width >= 500
    assert image.text["Comment"] == issued[0]["url"]
    assert image.text["Title"] == "重庆市渝北区人民医院"
    assert encodes(png, issued[0]["url"])
    assert not encodes(png, issued[0]["url"] + "x")
    assert caption_ink(png) > 500


def test_the_organisation_can_be_named_by_its_full_name(qrcode_cli, hospital, tmp_path):
    """Is the exact full name (单位全称) accepted in place of the id, with the same scene?"""
    out = tmp_path / "by-name.png"

    result = qrcode_cli("重庆市渝北区人民医院", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert f"scene org:{hospital.id}" in result.output
    assert out.is_file()


def test_asking_again_gives_the_same_permanent_code(qrcode_cli, hospital, tmp_path):
    """Is a reprinted code the same code, so the printed ones keep working?"""
    first = qrcode_cli(str(hospital.id), "--out", str(tmp_path / "first.png"))
    second = qrcode_cli(str(hospital.id), "--out", str(tmp_path / "second.png"))

    def url(output: str) -> str:
        return re.search(r"ticket url: (\S+)", output).group(1)

    assert url(first.output) == url(second.output)
    assert (tmp_path / "first.png").read_bytes() == (tmp_path / "second.png").read_bytes()


def test_an_unknown_organisation_is_refused_and_nothing_written(qrcode_cli, ctx, tmp_path,
                                                                 sandbox_url):
    """Does a name that matches no organisation exactly fail, without asking WeChat?"""
    factories.organisation("重庆市渝北区人民医院")
    db.session.commit()
    before = len(sandbox_tickets(sandbox_url))
    out = tmp_path / "none.png"

    result = qrcode_cli("渝北区人民医院", "--out", str(out))

    assert result.exit_code == 1
    assert "no organisation has the id or full name '渝北区人民医院'" in result.output
    assert not out.exists()
    assert len(sandbox_tickets(sandbox_url)) == before


def test_a_png_that_cannot_be_written_leaves_the_organisation_unchanged(qrcode_cli, hospital,
                                                                         tmp_path):
    """When the PNG cannot be written, is the command refused and no scene recorded?"""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")

    result = qrcode_cli(str(hospital.id), "--out", str(blocker / "hospital.png"))

    assert result.exit_code == 1
    assert "cannot write the PNG" in result.output
    db.session.expire_all()
    assert db.session.get(Organisation, hospital.id).qr_scene is None


@pytest.mark.parametrize("args", [(), ("1", "--follow")])
def test_one_organisation_or_follow_must_be_named(qrcode_cli, args):
    """Is the command refused without a target, or with two?"""
    result = qrcode_cli(*args)

    assert result.exit_code == 2
    assert "name one organisation" in result.output


def test_without_a_cjk_font_the_caption_falls_back_to_ascii_with_a_warning(ctx):
    """With no CJK font installed, is a code still drawn, its caption in ASCII, and staff told?"""
    url = "http://weixin.qq.com/q/sandbox-fallback"

    poster = qrcodes.render_poster(url, ["重庆市渝北区人民医院"],
                                   ascii_caption=["Organisation #7 (org:7)"], title="test",
                                   font_patterns=())

    assert "no CJK font found" in poster.warning
    assert "Organisation #7 (org:7)" in poster.warning
    assert encodes(poster.png, url)
    assert caption_ink(poster.png) > 100


def test_the_system_cjk_font_is_found():
    """Is the installed Noto CJK font (fonts-noto-cjk) found, with its simplified-Chinese face?"""
    found = qrcodes.find_cjk_font()

    if found is None:
        pytest.skip("no CJK font installed on this machine")
    path, index = found
    from PIL import ImageFont

    assert ImageFont.truetype(path, 12, index=index).getname()[0].endswith("SC") \
        or not path.endswith(".ttc")


def test_the_follow_code_is_served_to_the_h5_pages(qrcode_cli, app, client, tmp_path,
                                                   sandbox_url):
    """Does `--follow` write the account's follow code, served at /h5/follow-qr.png?"""
    with app.app_context():
        served = qrcodes.follow_poster_path()
    served.unlink(missing_ok=True)
    assert client.get("/h5/follow-qr.png").status_code == 404

    result = qrcode_cli("--follow", "--out", str(tmp_path / "follow.png"))

    assert result.exit_code == 0, result.output
    follow = [ticket for ticket in sandbox_tickets(sandbox_url) if ticket["scene"] == "follow"]
    assert follow and follow[0]["action_name"] == "QR_LIMIT_STR_SCENE"
    with client.get("/h5/follow-qr.png") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.data == (tmp_path / "follow.png").read_bytes()
        assert encodes(response.data, follow[0]["url"])


def test_the_sandbox_gives_temporary_tickets_and_their_images(ctx, sandbox_url):
    """Does qrcode/create give an expiring ticket for an int scene, and showqrcode its image?"""
    from wx_app.wechat.client import client

    answer = client().post("qrcode/create", data={
        "expire_seconds": 600, "action_name": "QR_SCENE",
        "action_info": {"scene": {"scene_id": 123}}})

    assert answer["expire_seconds"] == 600
    image = requests.get(f"{sandbox_url}/mp.weixin.qq.com/cgi-bin/showqrcode",
                         params={"ticket": answer["ticket"]}, timeout=5)
    assert image.headers["Content-Type"] == "image/png"
    assert encodes(image.content, answer["url"])
    unknown = requests.get(f"{sandbox_url}/mp.weixin.qq.com/cgi-bin/showqrcode",
                           params={"ticket": "no-such-ticket"}, timeout=5)
    assert unknown.status_code == 404


@pytest.mark.parametrize("body", [
    {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}},
    {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}},
    {"action_name": "QR_FOREVER", "action_info": {"scene": {"scene_id": 1}}},
])
def test_the_sandbox_refuses_a_scene_wechat_would_refuse(ctx, body):
    """Are out-of-range scenes and unknown actions refused as WeChat refuses them?"""
    from wx_app.wechat.client import WeChatAPIError, client

    with pytest.raises(WeChatAPIError) as refused:
        client().post("qrcode/create", data=body)

    assert refused.value.errcode == 40097
