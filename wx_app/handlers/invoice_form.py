"""The invoice part of the order forms (立即申请 / 以后申请), shared by 个人购买 and 团体购买."""

from __future__ import annotations

from flask import request

INVOICE_CHOICES = (("later", "以后申请"), ("now", "立即申请"))
TITLE_KINDS = (("personal", "个人"), ("company", "单位"))


def posted_invoice(default_title_kind: str) -> dict:
    """What the buyer chose and typed for the invoice, as the form posted it."""
    form = request.form
    choice = form.get("invoice_choice", "later")
    return {"choice": choice if choice in dict(INVOICE_CHOICES) else "later",
            "title_kind": form.get("invoice_title_kind", default_title_kind)[:16],
            "title": form.get("invoice_title", "").strip()[:100],
            "tax_number": form.get("invoice_tax_number", "").strip()[:30],
            "email": form.get("invoice_email", "").strip()[:120]}


def invoice_request(invoice: dict) -> dict | None:
    """The invoice request orders.open_order takes; None for 以后申请."""
    if invoice["choice"] != "now":
        return None
    return {"title_kind": invoice["title_kind"], "title": invoice["title"],
            "tax_number": invoice["tax_number"] or None, "email": invoice["email"] or None}
