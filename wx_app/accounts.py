"""Trainee accounts: password login, registration (注册), passwords and their reset (忘记密码),
the WeChat binding, and changing the phone number.

Nothing here reads a Flask request: handlers, CLI commands and jobs pass plain values. Each
function flushes; the caller commits. Counters, locks and verification codes live in Redis.

The numbers (docs/accounts.md):

- five wrong passwords for one username within 15 minutes lock it for 15 minutes; an
  address with twenty failures within 15 minutes is refused (429) until its window ends;
- an unknown username is counted and locked exactly like an account, so no answer tells
  whether an account exists;
- a verification code has six digits, lives five minutes, allows five tries, and is sent at
  most once a minute per account (or per unknown username) and ten times an hour per address.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import sms, store
from .errors import Conflict, DomainError, InvalidInput, NotAllowed, TooManyRequests
from .extensions import db
from .id_numbers import InvalidIdNumber, parse
from .models import District, Organisation, Trainee, WechatBinding
from .models._types import utcnow
from .passwords import hash_password, initial_password, uses_initial_password, verify_password
from .personal_data import decrypt, encrypt, lookup_hash
from .trainee_fields import check_gender, check_name, check_phone

log = logging.getLogger(__name__)

MAX_ACCOUNT_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
MAX_ADDRESS_FAILURES = 20
#: Below this many attempts left, the refusal says how many remain.
WARN_REMAINING = 2

CODE_DIGITS = 6
CODE_TTL_SECONDS = 5 * 60
CODE_TRIES = 5
CODE_RESEND_SECONDS = 60
MAX_ADDRESS_CODE_SENDS = 10
ADDRESS_CODE_WINDOW_SECONDS = 60 * 60

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 64
USERNAME_MAX_LENGTH = 32

_PHONE_USERNAME = re.compile(r"1\d{10}")
_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")

ALREADY_REGISTERED_MESSAGE = "该身份证号码已注册，请直接登录；如忘记密码，请点击“忘记密码”重置。"
PHONE_TAKEN_MESSAGE = "该手机号码已被其他账号使用，请换一个手机号码。"


class LoginFailed(DomainError):
    code = "login_failed"
    http_status = 401
    message = "用户名或密码错误。"


class AccountLocked(TooManyRequests):
    code = "account_locked"
    message = (f"密码错误次数过多，该账号已锁定{LOCK_SECONDS // 60}分钟。"
               "请稍后再试，或点击“忘记密码”重置密码。")


class AddressThrottled(TooManyRequests):
    code = "too_many_failures"
    message = f"登录失败次数过多，请{FAILURE_WINDOW_SECONDS // 60}分钟后再试。"


class AccountDisabled(NotAllowed):
    code = "account_disabled"
    message = "该账号已停用，请拨打400-023-9229按1联系管理员。"


class AlreadyRegistered(Conflict):
    code = "already_registered"
    message = ALREADY_REGISTERED_MESSAGE


class CodeInvalid(InvalidInput):
    code = "invalid_code"
    message = "验证码不正确或已失效，请重新获取。"


class CodeRecentlySent(TooManyRequests):
    code = "code_recently_sent"
    message = f"验证码已发送，请{CODE_RESEND_SECONDS}秒后再重新获取。"


# --- usernames ---------------------------------------------------------------------------

def normalise_username(raw: str | None) -> str:
    """Trim, fold full-width characters, upper-case a trailing x of an ID number."""
    return unicodedata.normalize("NFKC", raw or "").strip().upper()


def find_by_username(username: str | None) -> Trainee | None:
    """The trainee whose ID number or phone number is `username`, if any."""
    name = normalise_username(username)
    if not name or len(name) > USERNAME_MAX_LENGTH:
        return None
    column = Trainee.phone_hash if _PHONE_USERNAME.fullmatch(name) else Trainee.id_number_hash
    return db.session.scalar(sa.select(Trainee).where(column == lookup_hash(name)))


def _subject(trainee: Trainee | None, username: str) -> str:
    """What limits count against: the account, or the unknown username itself."""
    if trainee is not None:
        return f"trainee:{trainee.id}"
    return "username:" + lookup_hash(normalise_username(username))


def _describe(subject: str) -> str:
    """A subject for the log: the trainee id, never a username in clear."""
    return subject.replace(":", " ") if subject.startswith("trainee:") else "an unknown username"


# --- password login ----------------------------------------------------------------------

def authenticate(username: str | None, password: str | None, ip: str) -> Trainee:
    """The trainee whose username and password these are; otherwise raise.

    Raises InvalidInput (a field left empty), AddressThrottled (this address failed too
    often), AccountLocked, LoginFailed (the same for an unknown username and a wrong
    password) or AccountDisabled (right password, account stopped by staff).
    """
    username, password = normalise_username(username), password or ""
    empty = {}
    if not username:
        empty["username"] = "请输入用户名（身份证号码或手机号码）。"
    if not password:
        empty["password"] = "请输入密码。"
    if empty:
        raise InvalidInput("请输入用户名和密码。", fields=empty)

    redis = store.client()
    if int(redis.get(store.key("login", "address", ip)) or 0) >= MAX_ADDRESS_FAILURES:
        log.warning("login refused: address %s failed too often", ip)
        raise AddressThrottled()
    trainee = find_by_username(username)
    subject = _subject(trainee, username)
    if redis.exists(store.key("login", "lock", subject)):
        log.info("login refused: %s is locked", _describe(subject))
        raise AccountLocked()

    if not password_matches(trainee, password):
        raise _failure(subject, ip)
    if trainee.status != "active":
        log.info("login refused: trainee %s is %s", trainee.id, trainee.status)
        raise AccountDisabled()

    redis.delete(store.key("login", "failures", subject))
    log.info("trainee %s authenticated by password from %s", trainee.id, ip)
    return trainee


_dummy_hash: str | None = None


def password_matches(trainee: Trainee | None, password: str) -> bool:
    """True when `password` is the trainee's; costs one scrypt check whatever the outcome."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    if trainee is None:
        # An unknown username costs as much as a wrong password: timing tells nothing.
        verify_password(_dummy_hash, password)
        return False
    if uses_initial_password(trainee.password_hash):
        verify_password(_dummy_hash, password)
        return verify_password(trainee.password_hash, password, trainee.id_number)
    return verify_password(trainee.password_hash, password)


def _failure(subject: str, ip: str) -> DomainError:
    """Count a wrong password against the subject and the address; the refusal to raise."""
    redis = store.client()
    address_key = store.key("login", "address", ip)
    failures_key = store.key("login", "failures", subject)
    pipe = redis.pipeline()
    pipe.incr(address_key)
    pipe.expire(address_key, FAILURE_WINDOW_SECONDS, nx=True)
    pipe.incr(failures_key)
    pipe.expire(failures_key, FAILURE_WINDOW_SECONDS, nx=True)
    _, _, failures, _ = pipe.execute()

    if failures >= MAX_ACCOUNT_FAILURES:
        redis.set(store.key("login", "lock", subject), 1, ex=LOCK_SECONDS)
        redis.delete(failures_key)
        log.warning("login locked for %s after %d failures (last from %s)",
                    _describe(subject), failures, ip)
        return AccountLocked()
    log.info("login failed for %s from %s (%d of %d)", _describe(subject), ip, failures,
             MAX_ACCOUNT_FAILURES)
    remaining = MAX_ACCOUNT_FAILURES - failures
    if remaining <= WARN_REMAINING:
        return LoginFailed(f"用户名或密码错误。再错{remaining}次，账号将被锁定"
                           f"{LOCK_SECONDS // 60}分钟。")
    return LoginFailed()


def _clear_login_limits(trainee: Trainee) -> None:
    subject = _subject(trainee, "")
    store.client().delete(store.key("login", "lock", subject),
                          store.key("login", "failures", subject))


# --- passwords -----------------------------------------------------------------------------

def password_problems(password: str | None, confirm: str | None,
                      id_number: str | None = None) -> dict[str, str]:
    """What is wrong with a new password, by form field (`password`, `password_confirm`).

    At least 8 characters with letters and digits; never the initial password (edu@ + the
    last six of the ID) nor the ID number itself.
    """
    password = password or ""
    problem = None
    if not password:
        problem = "请设置密码。"
    elif len(password) < PASSWORD_MIN_LENGTH:
        problem = f"密码至少{PASSWORD_MIN_LENGTH}位。"
    elif len(password) > PASSWORD_MAX_LENGTH:
        problem = f"密码不能超过{PASSWORD_MAX_LENGTH}位。"
    elif not (_LETTER.search(password) and _DIGIT.search(password)):
        problem = "密码须同时包含字母和数字。"
    elif id_number and password == initial_password(id_number):
        problem = "不能使用初始密码（edu@加身份证号码后六位），请设置新密码。"
    elif id_number and normalise_username(password) == normalise_username(id_number):
        problem = "密码不能与身份证号码相同。"
    if problem:
        return {"password": problem}
    if confirm != password:
        return {"password_confirm": "两次输入的密码不一致。"}
    return {}


def _set_password(trainee: Trainee, password: str) -> None:
    trainee.password_hash = hash_password(password)
    trainee.must_change_password = False
    # Every session issued before this moment is void (sessions.current_trainee checks it).
    trainee.session_epoch = (trainee.session_epoch or 0) + 1


def change_password(trainee: Trainee, new_password: str | None, confirm: str | None, *,
                    current_password: str | None = None) -> None:
    """Set a new password. The current one is asked for unless the change is the forced one
    after logging in with the initial password. Other sessions of the account end."""
    if not trainee.must_change_password and not password_matches(trainee,
                                                                 current_password or ""):
        raise InvalidInput("当前密码不正确。", code="wrong_password",
                           fields={"current_password": "当前密码不正确。"})
    problems = password_problems(new_password, confirm, trainee.id_number)
    if problems:
        raise InvalidInput("请按提示修改密码。", fields=problems)

    forced = trainee.must_change_password
    _set_password(trainee, new_password)
    db.session.flush()
    log.info("trainee %s changed password%s", trainee.id, " (initial password replaced)"
             if forced else "")


# --- registration (注册) -------------------------------------------------------------------

@dataclass(frozen=True)
class Registration:
    """What the trainee typed on the registration form, as text."""

    name: str = ""
    id_number: str = ""
    phone: str = ""
    gender: str = ""
    organisation_name: str = ""
    file_district_id: str = ""
    password: str = ""
    password_confirm: str = ""


def register(form: Registration) -> Trainee:
    """Create an account from the registration form, or raise with a message per field.

    Raises InvalidInput whose `fields` name every bad field (AlreadyRegistered when the ID
    number has an account already, with the same `fields`).
    """
    problems: dict[str, str] = {}
    gender = None
    name = _checked(problems, "name", check_name, form.name)
    phone = _checked(problems, "phone", check_phone, form.phone)
    try:
        id_number = parse(form.id_number)
    except InvalidIdNumber as exc:
        problems["id_number"] = exc.message
        id_number = None
    if id_number is not None:
        gender = _checked(problems, "gender", check_gender, form.gender, id_number)
    elif not form.gender:
        problems["gender"] = "请选择性别。"
    organisation, district = _workplace(problems, form.organisation_name, form.file_district_id)
    problems.update(password_problems(form.password, form.password_confirm,
                                      id_number.number if id_number else None))

    already = id_number is not None and find_by_username(id_number.number) is not None
    if already:
        problems["id_number"] = ALREADY_REGISTERED_MESSAGE
    if phone and "phone" not in problems and find_by_username(phone) is not None:
        problems["phone"] = PHONE_TAKEN_MESSAGE
    if problems:
        error = AlreadyRegistered if already else InvalidInput
        raise error("请按提示修改后重新提交。", fields=problems)

    trainee = Trainee(name=name, gender=gender, birth_date=id_number.birth_date,
                      id_kind=id_number.kind, organisation=organisation, file_district=district,
                      password_hash=hash_password(form.password), source="register",
                      must_change_password=False, status="active", session_epoch=0)
    trainee.id_number = id_number.number
    trainee.phone = phone
    try:
        with db.session.begin_nested():
            db.session.add(trainee)
            db.session.flush()
    except IntegrityError:
        # Another request registered the same ID or phone number a moment ago.
        raise AlreadyRegistered("该身份证号码或手机号码刚刚已注册，请直接登录。",
                                fields={"id_number": ALREADY_REGISTERED_MESSAGE}) from None
    log.info("trainee %s registered (organisation %s, file district %s)", trainee.id,
             organisation.id if organisation else None, district.id if district else None)
    return trainee


def _checked(problems: dict[str, str], field: str, check, *args):
    try:
        return check(*args)
    except InvalidInput as exc:
        problems[field] = exc.message
        return None


def _workplace(problems: dict[str, str], organisation_name: str,
               district_id: str) -> tuple[Organisation | None, District | None]:
    """The organisation chosen by name, or else the district holding the personnel file."""
    name = unicodedata.normalize("NFKC", organisation_name or "").strip()
    if name:
        organisation = db.session.scalar(sa.select(Organisation).where(Organisation.name == name))
        if organisation is None:
            problems["organisation_name"] = ("没有找到该单位，请从搜索结果中选择；"
                                             "找不到您的单位时，请选择档案所在区县。")
        return organisation, None
    district = None
    if (district_id or "").isdigit():
        district = db.session.get(District, int(district_id))
    if district is None:
        problems["organisation_name"] = "请选择您的单位；找不到单位时，请选择档案所在区县。"
    return None, district


def search_organisations(query: str | None, *, first: Organisation | None = None,
                         limit: int = 20) -> list[Organisation]:
    """Organisations whose name contains `query`, names starting with it first.

    `first` (the organisation of the QR code the trainee followed) leads the list when it
    matches, and is the whole list when nothing has been typed yet.
    """
    text = unicodedata.normalize("NFKC", query or "").strip()[:50]
    if not text:
        return [first] if first is not None else []
    pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    starts_first = sa.case((Organisation.name.like(pattern + "%", escape="\\"), 0), else_=1)
    found = list(db.session.scalars(
        sa.select(Organisation).where(Organisation.name.like(f"%{pattern}%", escape="\\"))
        .order_by(starts_first, Organisation.name).limit(limit)))
    if first is not None and first in found:
        found.remove(first)
        found.insert(0, first)
    return found


# --- verification codes (短信验证码) ---------------------------------------------------------

def _code_keys(*scope: object) -> tuple[str, str]:
    return store.key("code", *scope), store.key("code", *scope, "tries")


def _code_digest(code: str, *scope: object) -> str:
    return lookup_hash(":".join(str(part) for part in (*scope, code)))


def _issue_code(*scope: object) -> str:
    """A new six-digit code for `scope`, replacing any earlier one."""
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    code_key, tries_key = _code_keys(*scope)
    pipe = store.client().pipeline()
    pipe.set(code_key, _code_digest(code, *scope), ex=CODE_TTL_SECONDS)
    pipe.set(tries_key, 0, ex=CODE_TTL_SECONDS)
    pipe.execute()
    return code


def _redeem_code(code: str, *scope: object) -> bool:
    """True once for the right code within its life and its tries; it is then used up."""
    redis = store.client()
    code_key, tries_key = _code_keys(*scope)
    tries = redis.incr(tries_key)
    if tries == 1:
        redis.expire(tries_key, CODE_TTL_SECONDS)
    stored = redis.get(code_key)
    if stored is None:
        return False
    typed = unicodedata.normalize("NFKC", code or "").strip()
    if tries <= CODE_TRIES and hmac.compare_digest(stored.decode(),
                                                    _code_digest(typed, *scope)):
        redis.delete(code_key, tries_key)
        return True
    if tries >= CODE_TRIES:
        redis.delete(code_key)
    return False


def _limit_sends(subject: str, ip: str | None) -> None:
    """One code a minute per subject, ten an hour per address; raise TooManyRequests."""
    redis = store.client()
    if ip:
        address_key = store.key("code", "address", ip)
        pipe = redis.pipeline()
        pipe.incr(address_key)
        pipe.expire(address_key, ADDRESS_CODE_WINDOW_SECONDS, nx=True)
        sends, _ = pipe.execute()
        if sends > MAX_ADDRESS_CODE_SENDS:
            log.warning("verification code refused: address %s asked %d times", ip, sends)
            raise TooManyRequests("获取验证码过于频繁，请1小时后再试。")
    if not redis.set(store.key("code", "sent", subject), 1, nx=True, ex=CODE_RESEND_SECONDS):
        raise CodeRecentlySent()


# --- 忘记密码 --------------------------------------------------------------------------------

def start_password_reset(username: str | None, ip: str | None = None) -> None:
    """Send a reset code to the account's phone. Answers the same whether or not the
    account exists (nothing returned; the same limits apply to unknown usernames)."""
    username = normalise_username(username)
    if not username:
        raise InvalidInput("请输入用户名。",
                           fields={"username": "请输入用户名（身份证号码或手机号码）。"})
    trainee = find_by_username(username)
    _limit_sends(_subject(trainee, username), ip)
    if trainee is None or not trainee.phone or trainee.status != "active":
        log.info("password reset asked for %s: no code sent",
                 f"trainee {trainee.id}" if trainee else "an unknown username")
        return

    code = _issue_code("reset", trainee.id)
    sms.send(trainee.phone, f"您的验证码为{code}，{CODE_TTL_SECONDS // 60}分钟内有效，"
             "用于重置登录密码。如非本人操作，请忽略本短信。", purpose="password_reset")
    log.info("password reset code sent to trainee %s", trainee.id)


def complete_password_reset(username: str | None, code: str | None, new_password: str | None,
                            confirm: str | None) -> Trainee:
    """Set a new password with the code sent to the phone; every other session ends.

    Raises InvalidInput for a bad new password, CodeInvalid for a wrong, expired, used-up or
    unknown code (the same for an account that does not exist).
    """
    trainee = find_by_username(username)
    problems = password_problems(new_password, confirm, trainee.id_number if trainee else None)
    if not (code or "").strip():
        problems["code"] = "请输入短信验证码。"
    if problems:
        raise InvalidInput("请按提示修改后重新提交。", fields=problems)
    if trainee is None or not _redeem_code(code, "reset", trainee.id):
        log.info("password reset refused for %s: code not accepted",
                 f"trainee {trainee.id}" if trainee else "an unknown username")
        raise CodeInvalid(fields={"code": CodeInvalid.message})

    _set_password(trainee, new_password)
    _clear_login_limits(trainee)
    db.session.flush()
    log.info("trainee %s reset password by sms code; earlier sessions ended", trainee.id)
    return trainee


# --- WeChat binding ------------------------------------------------------------------------

def binding_for_openid(openid: str) -> WechatBinding | None:
    return db.session.scalar(sa.select(WechatBinding).where(WechatBinding.openid == openid))


def binding_of(trainee: Trainee) -> WechatBinding | None:
    """The WeChat user bound to `trainee`, if any."""
    return db.session.scalar(sa.select(WechatBinding)
                             .where(WechatBinding.trainee_id == trainee.id))


def trainee_for_openid(openid: str) -> Trainee | None:
    """The active trainee this WeChat user is bound to, if any."""
    binding = binding_for_openid(openid)
    if binding is None or binding.trainee is None or binding.trainee.status != "active":
        return None
    return binding.trainee


def bind_openid(trainee: Trainee, openid: str) -> WechatBinding:
    """Bind the WeChat user `openid` to `trainee` (one each way): later visits from this
    WeChat log the trainee in. An earlier binding of either side is released."""
    binding = binding_for_openid(openid)
    if binding is not None and binding.trainee_id == trainee.id:
        return binding

    previous = binding_of(trainee)
    if previous is not None:
        previous.trainee_id, previous.bound_at = None, None
        log.info("trainee %s released wechat binding %s", trainee.id, previous.id)
    if binding is None:
        binding = WechatBinding(openid=openid)
        db.session.add(binding)
    elif binding.trainee_id is not None:
        log.info("wechat binding %s moves from trainee %s", binding.id, binding.trainee_id)
        binding.trainee_id = None
    db.session.flush()

    binding.trainee_id, binding.bound_at = trainee.id, utcnow()
    db.session.flush()
    log.info("trainee %s bound to wechat binding %s", trainee.id, binding.id)
    return binding


def unbind(trainee: Trainee) -> bool:
    """Release the trainee's WeChat binding; False when there was none."""
    binding = binding_of(trainee)
    if binding is None:
        return False
    binding.trainee_id, binding.bound_at = None, None
    db.session.flush()
    log.info("trainee %s unbound wechat binding %s", trainee.id, binding.id)
    return True


# --- changing the phone number -------------------------------------------------------------

def _pending_phone_key(trainee: Trainee) -> str:
    return store.key("phone", "pending", trainee.id)


def start_phone_change(trainee: Trainee, new_phone: str | None, ip: str | None = None) -> str:
    """Send a code to the new phone number; returns the number as checked."""
    try:
        phone = check_phone(new_phone)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, code=exc.code, fields={"phone": exc.message}) from None
    if phone == trainee.phone:
        raise InvalidInput("新手机号码与当前手机号码相同。",
                           fields={"phone": "新手机号码与当前手机号码相同。"})
    if find_by_username(phone) is not None:
        raise Conflict(PHONE_TAKEN_MESSAGE, code="phone_taken",
                       fields={"phone": PHONE_TAKEN_MESSAGE})
    _limit_sends(f"phone:{trainee.id}", ip)

    code = _issue_code("phone", trainee.id, lookup_hash(phone))
    store.client().set(_pending_phone_key(trainee), encrypt(phone), ex=CODE_TTL_SECONDS)
    sms.send(phone, f"您的验证码为{code}，{CODE_TTL_SECONDS // 60}分钟内有效，"
             "用于修改重庆人社培训网账号的手机号码。如非本人操作，请忽略本短信。",
             purpose="phone_change")
    log.info("phone change code sent for trainee %s", trainee.id)
    return phone


def pending_phone_change(trainee: Trainee) -> str | None:
    """The new phone number waiting for its code, if a code was sent in the last minutes."""
    stored = store.client().get(_pending_phone_key(trainee))
    return decrypt(stored) if stored else None


def complete_phone_change(trainee: Trainee, code: str | None) -> None:
    """Make the pending number the trainee's phone (and second username) with its code."""
    phone = pending_phone_change(trainee)
    if not (code or "").strip():
        raise InvalidInput("请输入短信验证码。", fields={"code": "请输入短信验证码。"})
    if phone is None or not _redeem_code(code, "phone", trainee.id, lookup_hash(phone)):
        log.info("phone change refused for trainee %s: code not accepted", trainee.id)
        raise CodeInvalid(fields={"code": CodeInvalid.message})

    trainee.phone = phone
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(PHONE_TAKEN_MESSAGE, code="phone_taken",
                       fields={"phone": PHONE_TAKEN_MESSAGE}) from None
    store.client().delete(_pending_phone_key(trainee))
    log.info("trainee %s changed phone number", trainee.id)
