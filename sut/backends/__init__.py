"""Backends behind one boundary (base.py), found through the registry in llmkit/config/backends.py and imported only
when chosen."""
from __future__ import annotations

import importlib

from llmkit.config.backends import backend_entry
from sut.backends.base import Backend, BackendSpec


def backend_class(name: str) -> type:
    module, cls = backend_entry(name).implementation.split(":")
    return getattr(importlib.import_module(module), cls)


def create_backend(spec: BackendSpec) -> Backend:
    return backend_class(spec.backend.name)(spec)
