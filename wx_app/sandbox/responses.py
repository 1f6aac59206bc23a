"""How the sandbox answers as WeChat does: JSON in UTF-8, emoji and Chinese unescaped."""

from __future__ import annotations

import json

from flask import Response


def wechat_json(body: dict, status: int = 200) -> Response:
    """A JSON answer with raw UTF-8 text, as api.weixin.qq.com sends it."""
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type="application/json; charset=utf-8")
