"""Backends behind one small protocol; each is imported only when chosen."""
from __future__ import annotations

from sut.backends.base import Backend, BackendSpec


def create_backend(spec: BackendSpec) -> Backend:
    from llmkit.config.schema import BackendName

    if spec.backend.name is BackendName.hf:
        from sut.backends.hf import HFBackend

        return HFBackend(spec)
    if spec.backend.name is BackendName.replay:
        from sut.backends.replay import ReplayBackend

        return ReplayBackend(spec)
    raise NotImplementedError(f"backend {spec.backend.name}")
