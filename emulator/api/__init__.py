"""Thin aiohttp handlers, one module per AEP service (parse -> validate -> domain call -> serialize)."""
