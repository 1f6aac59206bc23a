"""Command-line commands, one module per group (see wx_app/cli.py)."""
