"""Conformance cases every implementation of an interface must pass: subclass a base class here and
provide its fixture."""
