"""The domain's exceptions. Each carries a stable code that clients and tests rely on."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the user can understand; `message` is shown to them in Chinese."""

    code = "error"
    http_status = 400
    message = "请求无法处理，请稍后重试。"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 fields: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code
        self.fields = fields or {}

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class InvalidInput(DomainError):
    code = "invalid_input"
    message = "填写的内容有误，请检查后重试。"


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    message = "您要找的内容不存在。"


class NotAllowed(DomainError):
    code = "not_allowed"
    http_status = 403
    message = "您没有权限进行此操作。"


class LoginRequired(DomainError):
    code = "login_required"
    http_status = 401
    message = "请先登录。"


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
    message = "操作与当前状态冲突，请刷新后重试。"


class TooManyRequests(DomainError):
    code = "too_many_requests"
    http_status = 429
    message = "操作过于频繁，请稍后再试。"


class UpstreamError(DomainError):
    """WeChat or WeChat Pay failed or answered something we cannot use."""

    code = "upstream_error"
    http_status = 502
    message = "微信服务暂时不可用，请稍后重试。"
