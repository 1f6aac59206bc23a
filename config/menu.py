"""The official account's custom menu (自定义菜单), pushed by `flask wechat sync-menu`.

Each VIEW button names a path of the H5 pages; `sync-menu` prefixes it with PUBLIC_BASE_URL,
so one definition serves every deployment. The labels are the manual's words. WeChat's limits
(three top buttons, five under each, name lengths in bytes) are checked before anything is
sent; see docs/wechat-account.md.
"""

from __future__ import annotations

#: Key of the 学习进度 click; the callback answers it with the trainee's progress.
PROGRESS_KEY = "PROGRESS"


def view(name: str, path: str) -> dict:
    return {"type": "view", "name": name, "path": path}


def click(name: str, key: str) -> dict:
    return {"type": "click", "name": name, "key": key}


def group(name: str, *buttons: dict) -> dict:
    return {"name": name, "sub_button": list(buttons)}


MENU: tuple[dict, ...] = (
    group("继续教育",
          view("专技人员公需科目", "/h5/plans/public"),
          view("专技人员专业科目", "/h5/plans/professional"),
          view("课程培训", "/h5/training")),
    group("我的",
          view("我的证书", "/h5/certificates"),
          view("我的发票", "/h5/invoices"),
          view("团购订单", "/h5/group-orders"),
          click("学习进度", PROGRESS_KEY)),
    group("帮助",
          view("操作手册", "/h5/help"),
          view("联系客服", "/h5/help#contact")),
)
