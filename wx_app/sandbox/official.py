"""api.weixin.qq.com/cgi-bin: access tokens, users, menu, QR tickets, template messages, JS-API.

Every endpoint after the token endpoints calls `require_token()` first, as WeChat checks the
access token before anything else. QR code images come from mp.weixin.qq.com/cgi-bin/showqrcode,
which the sandbox serves under /mp.weixin.qq.com/.
"""

from __future__ import annotations

import hmac
import io
import logging
import re

import qrcode
from flask import Blueprint, Response, current_app, request

from . import errcodes, state
from .errcodes import WeChatError
from .responses import wechat_json

log = logging.getLogger(__name__)

bp = Blueprint("sandbox_official", __name__)

API = "/api.weixin.qq.com"
#: An AppSecret is 32 hexadecimal digits; anything else is refused as malformed (40125).
SECRET_SHAPE = re.compile(r"[0-9a-f]{32}")


def check_app_credentials(appid: str | None, secret: str | None) -> None:
    """Refuse an unknown AppID or a wrong AppSecret with WeChat's errcodes.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
    """
    if not appid:
        raise WeChatError(errcodes.APPID_MISSING)
    if appid != current_app.config["WECHAT_APPID"]:
        raise WeChatError(errcodes.INVALID_APPID)
    if not secret:
        raise WeChatError(errcodes.APPSECRET_MISSING)
    if not SECRET_SHAPE.fullmatch(secret):
        raise WeChatError(errcodes.INVALID_APPSECRET)
    if not hmac.compare_digest(secret, current_app.config["WECHAT_SECRET"]):
        raise WeChatError(errcodes.INVALID_CREDENTIAL)


def require_token(kinds: tuple[str, ...] = (state.BASIC, state.STABLE)) -> state.AccessToken:
    """The valid access token of this request's `access_token` parameter, or WeChat's refusal.

    Missing gives 41001, unknown or replaced 40001, expired 42001.
    https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
    """
    value = request.args.get("access_token", "")
    if not value:
        raise WeChatError(errcodes.ACCESS_TOKEN_MISSING)
    if state.current().take_token_refusal():
        raise WeChatError(errcodes.ACCESS_TOKEN_EXPIRED, "refused on the sandbox's request")
    return state.current().check_token(value, kinds)


@bp.get(f"{API}/cgi-bin/token")
def token():
    """GET cgi-bin/token: a new access token on every call.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
    """
    if request.args.get("grant_type") != "client_credential":
        raise WeChatError(errcodes.INVALID_GRANT_TYPE)
    check_app_credentials(request.args.get("appid"), request.args.get("secret"))

    issued = state.current().issue_access_token(request.args["appid"])
    log.info("issued an access token (cgi-bin/token)")
    return wechat_json({"access_token": issued.value, "expires_in": state.TOKEN_TTL})


@bp.route(f"{API}/cgi-bin/stable_token", methods=["GET", "POST"])
def stable_token():
    """POST cgi-bin/stable_token (JSON): the same token while valid, unless force_refresh.

    https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
    """
    if request.method != "POST":
        raise WeChatError(errcodes.REQUIRE_POST)
    if not request.get_data():
        raise WeChatError(errcodes.EMPTY_POST_DATA)
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise WeChatError(errcodes.DATA_FORMAT_ERROR)
    if body.get("grant_type") != "client_credential":
        raise WeChatError(errcodes.INVALID_GRANT_TYPE)
    check_app_credentials(body.get("appid"), body.get("secret"))

    force_refresh = body.get("force_refresh") is True
    issued = state.current().issue_stable_token(body["appid"], force_refresh)
    remaining = int(issued.expires_at - state.current().now())
    log.info("answered a stable access token (force_refresh=%s)", force_refresh)
    return wechat_json({"access_token": issued.value, "expires_in": remaining})


@bp.get(f"{API}/cgi-bin/user/info")
def user_info():
    """GET cgi-bin/user/info: whether a user follows the account, and since when.

    As WeChat has done since late 2021, the answer carries no nickname, avatar, sex or
    region; those come only from sns/userinfo after the user consents (snsapi_userinfo).
    https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
    """
    require_token()
    openid = request.args.get("openid", "")
    if not openid:
        raise WeChatError(errcodes.OPENID_MISSING)
    user = state.current().user(openid)
    if user is None:
        raise WeChatError(errcodes.INVALID_OPENID)

    if not user.subscribed:
        return wechat_json({"subscribe": 0, "openid": user.openid, "unionid": user.unionid})
    return wechat_json({
        "subscribe": 1,
        "openid": user.openid,
        "language": user.language,
        "subscribe_time": user.subscribe_time,
        "unionid": user.unionid,
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    })


def _json_body() -> dict:
    """The POSTed JSON object, refused as WeChat refuses an empty or malformed body."""
    if not request.get_data():
        raise WeChatError(errcodes.EMPTY_POST_DATA)
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise WeChatError(errcodes.DATA_FORMAT_ERROR)
    return body


# --- custom menu (自定义菜单) ----------------------------------------------------------------

#: Button types, and the field each needs besides its name.
BUTTON_TARGETS = {
    "click": "key", "view": "url", "miniprogram": "url",
    "scancode_push": "key", "scancode_waitmsg": "key", "pic_sysphoto": "key",
    "pic_photo_or_album": "key", "pic_weixin": "key", "location_select": "key",
    "media_id": "media_id", "view_limited": "media_id",
    "article_id": "article_id", "article_view_limited": "article_id",
}
TOP_BUTTONS_MAX, SUB_BUTTONS_MAX = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES, KEY_BYTES, URL_BYTES = 16, 60, 128, 1024


def _size(value) -> int:
    return len(str(value).encode("utf-8")) if value else 0


def _check_leaf(button: dict, sub: bool) -> None:
    """One button that does something: its type, and the key or URL that type needs."""
    kind = button.get("type")
    if kind not in BUTTON_TARGETS:
        raise WeChatError(errcodes.INVALID_SUB_BUTTON_TYPE if sub
                          else errcodes.INVALID_BUTTON_TYPE)
    target = BUTTON_TARGETS[kind]
    if target == "key" and not 0 < _size(button.get("key")) <= KEY_BYTES:
        raise WeChatError(errcodes.INVALID_SUB_BUTTON_KEY_SIZE if sub
                          else errcodes.INVALID_BUTTON_KEY_SIZE)
    if target == "url":
        url = str(button.get("url") or "")
        if not 0 < _size(url) <= URL_BYTES:
            raise WeChatError(errcodes.INVALID_SUB_BUTTON_URL_SIZE if sub
                              else errcodes.INVALID_BUTTON_URL_SIZE)
        if not url.startswith(("http://", "https://")):
            raise WeChatError(errcodes.INVALID_SUB_BUTTON_URL_DOMAIN if sub
                              else errcodes.INVALID_BUTTON_URL_DOMAIN)
    if target in ("media_id", "article_id") and not button.get(target):
        raise WeChatError(errcodes.INVALID_ARGS, f"{kind} needs {target}")


def check_menu(body: dict) -> list[dict]:
    """The menu's buttons if WeChat would take them; else the errcode of the first problem.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
    """
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= TOP_BUTTONS_MAX:
        raise WeChatError(errcodes.INVALID_BUTTON_SIZE)
    for button in buttons:
        if not isinstance(button, dict):
            raise WeChatError(errcodes.DATA_FORMAT_ERROR)
        if not 0 < _size(button.get("name")) <= TOP_NAME_BYTES:
            raise WeChatError(errcodes.INVALID_BUTTON_NAME_SIZE)
        subs = button.get("sub_button") or []
        if not subs:
            _check_leaf(button, sub=False)
            continue
        if not isinstance(subs, list) or len(subs) > SUB_BUTTONS_MAX:
            raise WeChatError(errcodes.INVALID_SUB_BUTTON_SIZE)
        for sub in subs:
            if not isinstance(sub, dict):
                raise WeChatError(errcodes.DATA_FORMAT_ERROR)
            if sub.get("sub_button"):
                raise WeChatError(errcodes.INVALID_SUB_MENU_LEVEL)
            if not 0 < _size(sub.get("name")) <= SUB_NAME_BYTES:
                raise WeChatError(errcodes.INVALID_SUB_BUTTON_NAME_SIZE)
            _check_leaf(sub, sub=True)
    return buttons


def _stored_button(button: dict) -> dict:
    """A button as menu/get answers it: leaves carry an empty sub_button list."""
    subs = button.get("sub_button") or []
    if subs:
        return {"name": button["name"], "sub_button": [_stored_button(sub) for sub in subs]}
    fields = ("type", "name", "key", "url", "media_id", "article_id", "appid", "pagepath")
    return {**{name: button[name] for name in fields if button.get(name)}, "sub_button": []}


@bp.post(f"{API}/cgi-bin/menu/create")
def menu_create():
    """POST cgi-bin/menu/create: replace the custom menu.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
    """
    require_token()
    buttons = check_menu(_json_body())

    state.current().set_menu({"button": [_stored_button(button) for button in buttons]})
    log.info("custom menu created with %d top buttons", len(buttons))
    return wechat_json({"errcode": 0, "errmsg": "ok"})


@bp.get(f"{API}/cgi-bin/menu/get")
def menu_get():
    """GET cgi-bin/menu/get: the menu made through the API; 46003 when there is none.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Querying_Custom_Menus.html
    """
    require_token()
    menu = state.current().current_menu()
    if menu is None:
        raise WeChatError(errcodes.MENU_NO_EXIST)
    return wechat_json({"menu": menu})


@bp.get(f"{API}/cgi-bin/get_current_selfmenu_info")
def current_selfmenu_info():
    """GET cgi-bin/get_current_selfmenu_info: the menu in force, in its own shape.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Getting_Custom_Menu_Configurations.html
    """
    require_token()
    menu = state.current().current_menu()
    if menu is None:
        return wechat_json({"is_menu_open": 0, "selfmenu_info": {"button": []}})

    def leaf(button: dict) -> dict:
        return {name: value for name, value in button.items() if name != "sub_button"}

    buttons = [{"name": button["name"],
                "sub_button": {"list": [leaf(sub) for sub in button["sub_button"]]}}
               if button["sub_button"] else leaf(button) for button in menu["button"]]
    return wechat_json({"is_menu_open": 1, "selfmenu_info": {"button": buttons}})


@bp.get(f"{API}/cgi-bin/menu/delete")
def menu_delete():
    """GET cgi-bin/menu/delete: remove the custom menu.

    https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Deleting_Custom-Defined_Menu.html
    """
    require_token()
    state.current().set_menu(None)
    log.info("custom menu deleted")
    return wechat_json({"errcode": 0, "errmsg": "ok"})


# --- QR codes with parameters (带参数二维码) --------------------------------------------------

QR_ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
QR_DEFAULT_EXPIRY, QR_MAX_EXPIRY = 30, 2_592_000
QR_LIMIT_SCENE_MAX = 100_000
SCENE_STR_MAX = 64


def _qr_scene(action_name: str, action_info) -> int | str:
    """The scene of a qrcode/create body: an int id or a 1–64 character string."""
    scene = action_info.get("scene") if isinstance(action_info, dict) else None
    if not isinstance(scene, dict):
        raise WeChatError(errcodes.INVALID_ARGS, "action_info.scene is required")
    if action_name.endswith("STR_SCENE"):
        scene_str = scene.get("scene_str")
        if not isinstance(scene_str, str) or not 1 <= len(scene_str) <= SCENE_STR_MAX:
            raise WeChatError(errcodes.INVALID_ARGS, "scene_str must be 1 to 64 characters")
        return scene_str
    scene_id = scene.get("scene_id")
    upper = QR_LIMIT_SCENE_MAX if action_name == "QR_LIMIT_SCENE" else 2**32 - 1
    if isinstance(scene_id, bool) or not isinstance(scene_id, int) \
            or not 1 <= scene_id <= upper:
        raise WeChatError(errcodes.INVALID_ARGS, f"scene_id must be 1 to {upper}")
    return scene_id


@bp.post(f"{API}/cgi-bin/qrcode/create")
def qrcode_create():
    """POST cgi-bin/qrcode/create: a temporary or permanent ticket for a scene.

    A permanent scene has one ticket: asking again answers the same one, as WeChat does.
    https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
    """
    require_token()
    body = _json_body()
    action_name = body.get("action_name")
    if action_name not in QR_ACTIONS:
        raise WeChatError(errcodes.INVALID_ARGS, "unknown action_name")
    scene = _qr_scene(action_name, body.get("action_info"))
    permanent = action_name.startswith("QR_LIMIT")
    expire_seconds = None
    if not permanent:
        try:
            expire_seconds = int(body.get("expire_seconds") or QR_DEFAULT_EXPIRY)
        except (TypeError, ValueError):
            raise WeChatError(errcodes.INVALID_ARGS, "expire_seconds") from None
        expire_seconds = min(max(expire_seconds, 1), QR_MAX_EXPIRY)

    ticket = state.current().issue_qr_ticket(action_name, scene, expire_seconds)
    answer = {"ticket": ticket.ticket, "url": ticket.url}
    if not permanent:
        answer["expire_seconds"] = expire_seconds
    return wechat_json(answer)


@bp.get("/mp.weixin.qq.com/cgi-bin/showqrcode")
def show_qrcode():
    """GET mp.weixin.qq.com/cgi-bin/showqrcode?ticket=: the QR code image of a ticket.

    No access token: the ticket is the credential. An unknown or expired ticket is a 404.
    """
    ticket = state.current().qr_ticket(request.args.get("ticket", ""))
    if ticket is None:
        return Response("invalid ticket", status=404, content_type="text/plain")
    image = qrcode.make(ticket.url, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return Response(buffer.getvalue(), content_type="image/png",
                    headers={"Cache-Control": "max-age=86400"})


# --- template messages (模板消息) -----------------------------------------------------------

#: The account's private templates, as chosen in the MP console: the three the app's settings
#: name. Keys follow WeChat's typed names (thing, character_string, amount, time…).
ACCOUNT_TEMPLATES = (
    ("TEMPLATE_ID_PAYMENT_SUCCESS", "缴费成功通知",
     "订单号：{{character_string1.DATA}}\n培训计划：{{thing2.DATA}}\n"
     "金额：{{amount3.DATA}}\n支付时间：{{time4.DATA}}"),
    ("TEMPLATE_ID_CERTIFICATE_ISSUED", "证书发放通知",
     "培训计划：{{thing1.DATA}}\n证书编号：{{character_string2.DATA}}\n"
     "获得学时：{{thing3.DATA}}\n发证时间：{{time4.DATA}}"),
    ("TEMPLATE_ID_INVOICE_ISSUED", "发票开具通知",
     "订单号：{{character_string1.DATA}}\n发票抬头：{{thing2.DATA}}\n"
     "开票金额：{{amount3.DATA}}\n开票时间：{{time4.DATA}}"),
)
TEMPLATE_KEY = re.compile(r"\{\{(\w+)\.DATA\}\}")
#: What a value of each keyword type may hold (WeChat's rules for typed template keywords).
VALUE_RULES = {
    "thing": re.compile(r"[^\n\r]{1,20}"),
    "character_string": re.compile(r"[\x21-\x7e]{1,32}"),
    "amount": re.compile(r"[¥￥$]?\d{1,10}(\.\d{1,2})?元?"),
    "time": re.compile(r"\d{4}(年\d{1,2}月\d{1,2}日|-\d{2}-\d{2})( \d{1,2}:\d{2}(:\d{2})?)?"),
    "phrase": re.compile(r"[\u4e00-\u9fff]{1,5}"),
}


def account_templates() -> dict[str, tuple[str, str]]:
    """template_id → (title, content) of the account's private templates."""
    config = current_app.config
    return {config[setting]: (title, content) for setting, title, content in ACCOUNT_TEMPLATES}


@bp.get(f"{API}/cgi-bin/template/get_all_private_template")
def all_private_templates():
    """GET cgi-bin/template/get_all_private_template: the templates messages may use.

    https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
    """
    require_token()
    return wechat_json({"template_list": [
        {"template_id": template_id, "title": title, "primary_industry": "教育",
         "deputy_industry": "培训", "content": content, "example": ""}
        for template_id, (title, content) in account_templates().items()]})


def _check_template_data(content: str, data) -> dict[str, str]:
    """The value of each keyword the template shows; 47003 names the first bad one."""
    if not isinstance(data, dict):
        raise WeChatError(errcodes.ARGUMENT_INVALID, "data must be an object")
    values = {}
    for key in TEMPLATE_KEY.findall(content):
        entry = data.get(key)
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, str) or not value:
            raise WeChatError(errcodes.ARGUMENT_INVALID, f"data.{key}.value is empty")
        rule = VALUE_RULES.get(key.rstrip("0123456789"))
        if rule is not None and not rule.fullmatch(value):
            raise WeChatError(errcodes.ARGUMENT_INVALID, f"data.{key}.value invalid")
        values[key] = value
    return values


@bp.post(f"{API}/cgi-bin/message/template/send")
def template_send():
    """POST cgi-bin/message/template/send: a template message to a user who follows.

    https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
    """
    require_token()
    body = _json_body()
    failure = state.current().take_template_failure()
    if failure is not None:
        log.info("template send failed on the sandbox's request (errcode %s)", failure)
        error = errcodes.SYSTEM_ERROR if failure == -1 else errcodes.ErrCode(failure, "failed")
        raise WeChatError(error, "failure requested through /sandbox/api/templates/fail")
    user = state.current().user(str(body.get("touser") or ""))
    if user is None:
        raise WeChatError(errcodes.INVALID_OPENID)
    if not user.subscribed:
        raise WeChatError(errcodes.REQUIRE_SUBSCRIBE)
    template = account_templates().get(str(body.get("template_id") or ""))
    if template is None:
        raise WeChatError(errcodes.INVALID_TEMPLATE_ID)
    values = _check_template_data(template[1], body.get("data"))

    text = TEMPLATE_KEY.sub(lambda match: values[match.group(1)], template[1])
    message = state.current().record_template_message(
        user.openid, body["template_id"], body.get("url"), body["data"], text)
    log.info("template message %s sent (%s)", message.msgid, template[0])
    return wechat_json({"errcode": 0, "errmsg": "ok", "msgid": message.msgid})


# --- JS-SDK ----------------------------------------------------------------------------------

@bp.get(f"{API}/cgi-bin/ticket/getticket")
def get_ticket():
    """GET cgi-bin/ticket/getticket?type=jsapi: the ticket that signs wx.config.

    https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
    """
    require_token()
    if request.args.get("type") not in ("jsapi", "wx_card"):
        raise WeChatError(errcodes.INVALID_ARGS, "type must be jsapi or wx_card")

    ticket, expires_in = state.current().issue_jsapi_ticket()
    return wechat_json({"errcode": 0, "errmsg": "ok", "ticket": ticket,
                        "expires_in": expires_in})
