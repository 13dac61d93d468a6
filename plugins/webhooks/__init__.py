"""Outgoing webhooks (being written)."""
