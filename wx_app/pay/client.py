"""`WeChatPayClient`: the WeChat Pay v3 calls the platform makes, over requests.

Every request is signed with the merchant key; every answer's signature is checked before
its body is read, and one that does not verify is refused. Whatever goes wrong (WeChat's
refusal, a timeout, a forged answer) reaches the caller as one `PayError` with a stable code.
Logs name the endpoint, the order number and the outcome, never a body (it holds the openid).

JSAPI下单 https://pay.weixin.qq.com/doc/v3/merchant/4012791856
商户订单号查询订单 https://pay.weixin.qq.com/doc/v3/merchant/4012791859
关闭订单 https://pay.weixin.qq.com/doc/v3/merchant/4012791860
退款申请 https://pay.weixin.qq.com/doc/v3/merchant/4012791862
查询单笔退款 https://pay.weixin.qq.com/doc/v3/merchant/4012791863
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

import requests
from flask import current_app

from ..errors import UpstreamError
from .signing import (
    HEADER_SIGNATURE,
    Credentials,
    VerificationFailed,
    authorization,
    credentials,
    rfc3339,
    verify_signature,
)

log = logging.getLogger(__name__)

EXTENSION = "wx_pay_client"
#: Seconds to connect and to wait for an answer.
TIMEOUT = (3.05, 10.0)
USER_AGENT = "wx-app/0.1 (+requests)"

#: Our codes for failures WeChat Pay does not name itself.
TIMEOUT_CODE = "TIMEOUT"
NETWORK_ERROR = "NETWORK_ERROR"
RESPONSE_NOT_VERIFIED = "RESPONSE_NOT_VERIFIED"
BAD_RESPONSE = "BAD_RESPONSE"


class PayError(UpstreamError):
    """A WeChat Pay call that failed: a refusal, no answer, or an answer we cannot trust.

    `code` is WeChat Pay's error code (PARAM_ERROR, ORDERPAID, OUT_TRADE_NO_USED…) or one of
    ours (TIMEOUT, NETWORK_ERROR, RESPONSE_NOT_VERIFIED, BAD_RESPONSE); `detail` is WeChat
    Pay's message (or the verification failure), for logs and staff; `upstream_status` is
    WeChat Pay's HTTP status, None without an answer. Left uncaught, it is shown as the 502
    of UpstreamError with its code and the generic Chinese message.
    """

    def __init__(self, code: str, message: str, http_status: int | None = None):
        super().__init__(code=code)
        self.detail = message
        self.upstream_status = http_status

    def __str__(self) -> str:
        return f"{self.code} (HTTP {self.upstream_status}): {self.detail}"


class WeChatPayClient:
    """The merchant's API v3 calls against `api_base` (https://api.mch.weixin.qq.com/)."""

    def __init__(self, api_base: str, creds: Credentials, timeout: tuple = TIMEOUT):
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self.creds = creds
        self.timeout = timeout
        self.session = requests.Session()

    def jsapi_prepay(self, out_trade_no: str, description: str, amount_fen: int,
                     payer_openid: str, notify_url: str, time_expire: datetime | None) -> str:
        """Place a JSAPI order and return its prepay_id (valid two hours).

        Repeating the call with the same parameters gives the order's current prepay_id.
        https://pay.weixin.qq.com/doc/v3/merchant/4012791856
        """
        body = {"appid": self.creds.appid, "mchid": self.creds.mchid,
                "description": description, "out_trade_no": out_trade_no,
                "notify_url": notify_url, "amount": {"total": amount_fen, "currency": "CNY"},
                "payer": {"openid": payer_openid}}
        if time_expire is not None:
            body["time_expire"] = rfc3339(time_expire)

        answer = self._call("POST", "v3/pay/transactions/jsapi", body=body,
                            about=f"out_trade_no={out_trade_no}")
        prepay_id = answer.get("prepay_id") if answer else None
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PayError(BAD_RESPONSE, "answer without prepay_id", 200)
        return prepay_id

    def query_by_out_trade_no(self, out_trade_no: str) -> dict:
        """The order as WeChat Pay sees it: trade_state, transaction_id, amount, payer…

        https://pay.weixin.qq.com/doc/v3/merchant/4012791859
        """
        return self._call("GET", f"v3/pay/transactions/out-trade-no/{_segment(out_trade_no)}",
                          query={"mchid": self.creds.mchid},
                          about=f"out_trade_no={out_trade_no}", expect_body=True)

    def close(self, out_trade_no: str) -> None:
        """Close an unpaid order, so that it can no longer be paid (answer 204).

        https://pay.weixin.qq.com/doc/v3/merchant/4012791860
        """
        self._call("POST", f"v3/pay/transactions/out-trade-no/{_segment(out_trade_no)}/close",
                   body={"mchid": self.creds.mchid}, about=f"out_trade_no={out_trade_no}")

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str, notify_url: str | None) -> dict:
        """Ask for a refund; the answer's status is PROCESSING or SUCCESS (or ABNORMAL, CLOSED).

        The same out_refund_no with the same parameters refunds once, however often it is sent.
        https://pay.weixin.qq.com/doc/v3/merchant/4012791862
        """
        body = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
                "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"}}
        if reason:
            body["reason"] = reason
        if notify_url:
            body["notify_url"] = notify_url
        return self._call("POST", "v3/refund/domestic/refunds", body=body,
                          about=f"out_refund_no={out_refund_no}", expect_body=True)

    def query_refund(self, out_refund_no: str) -> dict:
        """A refund as WeChat Pay sees it, by our refund number.

        https://pay.weixin.qq.com/doc/v3/merchant/4012791863
        """
        return self._call("GET", f"v3/refund/domestic/refunds/{_segment(out_refund_no)}",
                          about=f"out_refund_no={out_refund_no}", expect_body=True)

    # --- one call --------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, query: dict | None = None,
              body: dict | None = None, about: str, expect_body: bool = False) -> dict | None:
        url = self.api_base + path + (f"?{urlencode(query)}" if query else "")
        payload = (json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
                   if body is not None else b"")
        parts = urlsplit(url)
        signed_path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Authorization": authorization(self.creds, method, signed_path, payload),
                   "Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"

        started = time.perf_counter()
        try:
            response = self.session.request(method, url, data=payload or None, headers=headers,
                                            timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            log.warning("wechatpay %s %s (%s) timed out", method, path, about)
            raise PayError(TIMEOUT_CODE, "WeChat Pay did not answer in time") from exc
        except requests.RequestException as exc:
            log.warning("wechatpay %s %s (%s) failed: %s", method, path, about,
                        type(exc).__name__)
            raise PayError(NETWORK_ERROR, type(exc).__name__) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000

        try:
            result = self._read(response, expect_body)
        except PayError as exc:
            log.warning("wechatpay %s %s (%s) refused: %s %s in %.0f ms", method, path,
                        about, exc.upstream_status, exc.code, elapsed_ms)
            raise
        log.info("wechatpay %s %s (%s) answered %s in %.0f ms", method, path, about,
                 response.status_code, elapsed_ms)
        return result

    def _read(self, response: requests.Response, expect_body: bool) -> dict | None:
        """The verified body of an answer, or the PayError it stands for."""
        status = response.status_code
        try:
            verify_signature(self.creds, response.headers, response.content)
        except VerificationFailed as failure:
            # A refusal WeChat Pay's gateway sent unsigned still tells what went wrong, and
            # acting on it changes nothing; anything else must verify before it is read.
            if response.ok or response.headers.get(HEADER_SIGNATURE):
                raise PayError(RESPONSE_NOT_VERIFIED, failure.code, status) from None

        if not response.ok:
            code, message = _refusal(response)
            raise PayError(code, message, status)
        if not response.content:
            if expect_body:
                raise PayError(BAD_RESPONSE, "empty answer", status)
            return None
        try:
            answer = response.json()
        except ValueError:
            raise PayError(BAD_RESPONSE, "answer is not JSON", status) from None
        if not isinstance(answer, dict):
            raise PayError(BAD_RESPONSE, "answer is not a JSON object", status)
        return answer


def _segment(value: str) -> str:
    """A path segment with everything outside letters, digits and -_ percent-encoded."""
    return quote(value, safe="")


def _refusal(response: requests.Response) -> tuple[str, str]:
    """WeChat Pay's error code and message: {"code": …, "message": …, "detail": …}."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return body["code"], str(body.get("message", ""))
    return f"HTTP_{response.status_code}", response.text[:200]


def client() -> WeChatPayClient:
    """The app's client (one per app; a requests session is safe to share between threads)."""
    app = current_app._get_current_object()
    if EXTENSION not in app.extensions:
        app.extensions[EXTENSION] = WeChatPayClient(app.config["WECHATPAY_API_BASE"],
                                                    credentials())
    return app.extensions[EXTENSION]
