"""Test support for plugin authors and the portal's own tests."""
