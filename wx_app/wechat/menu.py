"""The custom menu (自定义菜单): built from config/menu.py, checked, compared, pushed.

WeChat refuses a menu that breaks its limits with one errcode for the first problem it meets;
checking here first lets staff see every problem at once, in words, before anything is sent.

https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field

from flask import current_app

import config.menu

from ..errors import InvalidInput
from .client import WeChatAPIError, client

log = logging.getLogger(__name__)

TOP_BUTTONS_MAX = 3
SUB_BUTTONS_MAX = 5
TOP_NAME_BYTES = 16
SUB_NAME_BYTES = 60
#: Characters WeChat shows of a name before cutting it with "…" (一级 4 个汉字, 二级 8 个).
TOP_NAME_SHOWN, SUB_NAME_SHOWN = 4, 8
KEY_BYTES = 128
URL_BYTES = 1024
#: Button types WeChat knows, and the field each needs besides its name.
TARGETS = {
    "click": "key", "view": "url", "miniprogram": "url",
    "scancode_push": "key", "scancode_waitmsg": "key", "pic_sysphoto": "key",
    "pic_photo_or_album": "key", "pic_weixin": "key", "location_select": "key",
    "media_id": "media_id", "view_limited": "media_id",
    "article_id": "article_id", "article_view_limited": "article_id",
}
#: errcode of menu/get when no menu was made through the API.
NO_MENU = 46003


class MenuRefused(InvalidInput):
    """The menu breaks WeChat's limits; `problems` says how, one line each."""

    code = "menu_refused"

    def __init__(self, problems: list[str]):
        super().__init__("menu refused, nothing was sent to WeChat:\n  - "
                         + "\n  - ".join(problems))
        self.problems = problems


def build(definition: tuple[dict, ...] | None = None, base_url: str | None = None) -> dict:
    """The menu/create body: each button's `path` becomes a URL on PUBLIC_BASE_URL."""
    definition = config.menu.MENU if definition is None else definition
    base_url = (base_url or current_app.config["PUBLIC_BASE_URL"]).rstrip("/")

    def button(entry: dict) -> dict:
        made = {name: value for name, value in entry.items()
                if name not in ("path", "sub_button")}
        if "path" in entry:
            made["url"] = base_url + entry["path"]
        if "sub_button" in entry:
            made["sub_button"] = [button(sub) for sub in entry["sub_button"]]
        return made

    return {"button": [button(entry) for entry in definition]}


def _size(value) -> int:
    return len(str(value).encode("utf-8")) if value else 0


def _leaf_problems(button: dict, label: str) -> list[str]:
    kind = button.get("type")
    if kind not in TARGETS:
        return [f"{label}: type {kind!r} is not a WeChat button type "
                f"(view and click are the usual ones)"]
    target = TARGETS[kind]
    value = button.get(target)
    if not value:
        return [f"{label}: a {kind} button needs a {target}"]
    if target == "key" and _size(value) > KEY_BYTES:
        return [f"{label}: key is {_size(value)} bytes; at most {KEY_BYTES}"]
    if target == "url" and _size(value) > URL_BYTES:
        return [f"{label}: url is {_size(value)} bytes; at most {URL_BYTES}"]
    if target == "url" and not str(value).startswith(("http://", "https://")):
        return [f"{label}: url must start with http:// or https://, got {value!r}"]
    return []


def _name_problems(button: dict, label: str, limit: int, what: str) -> list[str]:
    name = button.get("name")
    if not name or not str(name).strip():
        return [f"{label}: the name is empty"]
    if _size(name) > limit:
        return [f"{label}: name is {_size(name)} bytes in UTF-8; WeChat allows at most "
                f"{limit} for a {what}"]
    return []


def problems(menu: dict) -> list[str]:
    """Every way `menu` breaks WeChat's limits (empty when WeChat would take it)."""
    buttons = menu.get("button") or []
    found = []
    if not 1 <= len(buttons) <= TOP_BUTTONS_MAX:
        found.append(f"the menu has {len(buttons)} top buttons; WeChat allows 1 to "
                     f"{TOP_BUTTONS_MAX}")
    for button in buttons:
        label = f"button {button.get('name') or '(no name)'!r}"
        found += _name_problems(button, label, TOP_NAME_BYTES, "top button")
        subs = button.get("sub_button") or []
        if not subs:
            found += _leaf_problems(button, label)
            continue
        if len(subs) > SUB_BUTTONS_MAX:
            found.append(f"{label}: has {len(subs)} sub-buttons; WeChat allows at most "
                         f"{SUB_BUTTONS_MAX}")
        for sub in subs:
            sub_label = f"button {button.get('name')!r} › {sub.get('name') or '(no name)'!r}"
            found += _name_problems(sub, sub_label, SUB_NAME_BYTES, "sub-button")
            if sub.get("sub_button"):
                found.append(f"{sub_label}: a sub-button cannot have sub-buttons of its own")
            else:
                found += _leaf_problems(sub, sub_label)
    return found


def warnings(menu: dict) -> list[str]:
    """Names WeChat takes but shows cut short on the phone."""
    found = []
    for button in menu.get("button") or []:
        found += _shown_warning(button, f"button {button.get('name')!r}", TOP_NAME_SHOWN)
        for sub in button.get("sub_button") or []:
            found += _shown_warning(sub, f"button {button.get('name')!r} › {sub.get('name')!r}",
                                    SUB_NAME_SHOWN)
    return found


def _shown_warning(button: dict, label: str, shown: int) -> list[str]:
    # A Chinese character takes the width of two Latin letters or digits.
    name = str(button.get("name") or "")
    width = sum(1 if ord(character) >= 0x2E80 else 0.5 for character in name)
    if width <= shown:
        return []
    return [f"{label}: WeChat shows about {shown} Chinese characters of this name and cuts "
            f"the rest with …"]


def describe(menu: dict | None) -> list[str]:
    """The menu as lines of text, one per button, for showing and comparing."""
    lines = []
    for button in (menu or {}).get("button", []):
        subs = button.get("sub_button") or []
        if not subs:
            lines.append(_describe_leaf(button, ""))
            continue
        lines.append(button["name"])
        lines += [_describe_leaf(sub, "    ") for sub in subs]
    return lines


def _describe_leaf(button: dict, indent: str) -> str:
    kind = button.get("type", "?")
    target = button.get(TARGETS.get(kind, ""), "")
    return f"{indent}{button.get('name')}  [{kind}] {target}"


def diff(current: dict | None, wanted: dict) -> list[str]:
    """A unified diff from the menu WeChat has to `wanted`; empty when they are the same."""
    return list(difflib.unified_diff(describe(current), describe(wanted),
                                     "menu WeChat has now", "config/menu.py", lineterm=""))


def current_menu() -> dict | None:
    """GET cgi-bin/menu/get: the menu made through the API, or None when there is none.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Querying_Custom_Menus.html
    """
    try:
        answer = client().get("menu/get")
    except WeChatAPIError as exc:
        if exc.errcode == NO_MENU:
            return None
        raise
    return answer.get("menu")


def push(menu: dict) -> None:
    """POST cgi-bin/menu/create: replace the account's menu with `menu`.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
    """
    client().post("menu/create", data=menu)
    log.info("custom menu pushed: %d top buttons", len(menu["button"]))


@dataclass
class SyncReport:
    """What `sync` found and did: the diff shown to staff, and whether the menu was pushed."""

    diff: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pushed: bool = False


def sync(menu: dict, dry_run: bool = False) -> SyncReport:
    """Check `menu`, compare it with WeChat's, and push it unless unchanged or `dry_run`."""
    found = problems(menu)
    if found:
        raise MenuRefused(found)

    report = SyncReport(diff=diff(current_menu(), menu), warnings=warnings(menu))
    if report.diff and not dry_run:
        push(menu)
        report.pushed = True
    return report
