"""Conformance suites: one set of cases every implementation of a service interface must pass.

Each is a base class; a test module subclasses it and provides the implementation as a fixture
(``storage``, ``billing``, ``auth``). The portal's own tests run its built-in backends through them.
"""
