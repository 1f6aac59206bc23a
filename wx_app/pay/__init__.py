"""WeChat Pay API v3 (public-key mode): signatures, the API client, notification checks.

- `signing`: every signature and cipher of the protocol, and the merchant's key material;
- `client`: `WeChatPayClient` (JSAPI prepay, query, close, refund, refund query) and `PayError`;
- `notifications`: `verify_and_decrypt()` for /pay/notify and /pay/refund-notify.

Nothing here reads a Flask request; settings come from `current_app.config`. docs/pay.md
describes the protocol as this project uses it.
"""
