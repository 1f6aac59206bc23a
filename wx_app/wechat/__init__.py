"""The official account (公众号) side of WeChat: API client, shared tokens, messages, menu."""
