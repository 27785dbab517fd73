"""The hf backend: PyTorch + transformers, CPU or GPU, continuous batching in one engine thread per instance.

transformers' own ContinuousBatchingManager (4.57) is not used: its logits processors see the flattened batch
(so min_new_tokens is wrong), it has no stop sequences and takes a single EOS id. See README, "The hf backend".
"""
from __future__ import annotations

import logging
import queue
import threading

from llmkit.benchmarks import Benchmark
from llmkit.config.schema import RunConfig
from sut.backends.base import BackendSpec, ErrorCallback, GenerationRequest, RequestBatch, TokenBatch, TokenCallback

log = logging.getLogger(__name__)

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def load_model(checkpoint: str, dtype_name: str, device_name: str):
    import torch
    from transformers import AutoModelForCausalLM

    from llmkit.errors import UserError

    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("system.device=cuda but torch sees no CUDA device; use system=cpu or a GPU machine")
    dtype = getattr(torch, DTYPES[dtype_name])
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype, attn_implementation="sdpa")
    return model.to(torch.device(device_name)).eval()


class HFBackend:
    @classmethod
    def prepare(cls, cfg: RunConfig, benchmark: Benchmark) -> BackendSpec:
        """The checkpoint to serve (a tiny model is written first when it is one and is missing)."""
        from llmkit.models.checkpoint import resolve_checkpoint

        checkpoint = resolve_checkpoint(cfg.model, benchmark).path
        return BackendSpec(cfg.backend, cfg.system, benchmark.name, cfg.dataset, str(checkpoint))

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self._inbox: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback) -> None:
        import torch

        if self.spec.backend.threads:
            torch.set_num_threads(self.spec.backend.threads)
        self.device = self.spec.devices[0]
        self.model = load_model(self.spec.checkpoint, self.spec.backend.dtype.value, self.device)
        self._on_first, self._on_final, self._on_error = on_first, on_final, on_error
        self._thread = threading.Thread(target=self._serve, name=f"hf-engine-{self.spec.instance}", daemon=True)
        self._thread.start()
        log.info("hf backend instance %d ready on %s", self.spec.instance, self.device)

    def submit(self, batch: RequestBatch) -> None:
        with self._pending_lock:
            self._pending += len(batch)
        for request in batch.requests():
            self._inbox.put(request)

    def pending(self) -> int:
        return self._pending

    def stats(self) -> dict | None:
        return None

    def stop(self) -> None:
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _take_new(self, batch, block: bool) -> list[GenerationRequest]:
        """Requests that fit the batch now; blocks for the first only when the batch is idle."""
        room = self.spec.backend.max_batch_size - len(batch)
        budget = self.spec.backend.max_prefill_tokens
        taken: list[GenerationRequest] = []
        while room > 0:
            try:
                request = self._inbox.get(block=block and not taken, timeout=0.05)
            except queue.Empty:
                break
            if request is None:
                break
            taken.append(request)
            room -= 1
            budget -= request.prompt.size
            if budget <= 0:
                break
        return taken

    def _serve(self) -> None:
        import torch

        from sut.backends.batching import ContinuousBatch

        batch = ContinuousBatch(self.model, torch.device(self.device))
        try:
            while not self._stopping.is_set():  # stop() finishes nothing more (Backend.stop)
                new = self._take_new(batch, block=len(batch) == 0)
                if new:
                    firsts = [(s.request.request_id, s.generated[:1]) for s in batch.admit(new) if s.request.stream]
                    if firsts:
                        self._on_first(TokenBatch.from_pairs(firsts))
                elif len(batch):
                    batch.step()
                self._complete(batch.evict_finished())
        except Exception as error:  # the engine thread must report, never die silently
            log.exception("hf backend instance %d failed", self.spec.instance)
            self._on_error(None, f"hf backend instance {self.spec.instance} failed: {type(error).__name__}: {error}")

    def _complete(self, finished) -> None:
        if not finished:
            return
        with self._pending_lock:
            self._pending -= len(finished)
        self._on_final(TokenBatch.from_pairs([(s.request.request_id, s.generated) for s in finished]))
