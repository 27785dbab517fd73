"""Continuous batching over a Hugging Face causal LM with a left-padded KV cache.

Sequences join the running batch after their own prefill and leave it when they finish, so a long answer never
holds a short one back. The batch keeps one DynamicCache whose rows are left-padded to a common length; the
attention mask hides the padding and explicit position ids keep each row's positions its own, so every row
decodes greedily exactly as it would alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sut.backends.base import GenerationRequest


@dataclass
class Sequence:
    request: GenerationRequest
    generated: list[int] = field(default_factory=list)
    finished: bool = False

    def append(self, token: int) -> None:
        self.generated.append(token)
        request, n = self.request, len(self.generated)
        stop = request.stop_sequence
        self.finished = (
            n >= request.max_new_tokens
            or (n >= request.min_new_tokens and token in request.eos_ids)
            or (stop is not None and n >= len(stop) and tuple(self.generated[-len(stop):]) == stop)
        )


def _left_pad(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _cache_from_layers(layers: list[tuple[torch.Tensor, torch.Tensor]]):
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache


def _cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


class ContinuousBatch:
    """The running batch of one backend instance. Not thread-safe: one engine thread owns it."""

    def __init__(self, model, device: torch.device):
        self.model = model
        self.device = device
        self.sequences: list[Sequence] = []
        self.cache = None
        self.mask: torch.Tensor | None = None  # [batch, cache length], 1 for real tokens
        self.last_tokens: torch.Tensor | None = None  # [batch]
        self.positions: torch.Tensor | None = None  # [batch], the next position id of each row

    def __len__(self) -> int:
        return len(self.sequences)

    def _choose(self, logits: torch.Tensor, sequences: list[Sequence]) -> list[int]:
        """Greedy choice; EOS is masked while a sequence is below its min_new_tokens."""
        for row, sequence in enumerate(sequences):
            if len(sequence.generated) < sequence.request.min_new_tokens:
                logits[row, list(sequence.request.eos_ids)] = float("-inf")
        return logits.argmax(dim=-1).tolist()

    @torch.inference_mode()
    def admit(self, requests: list[GenerationRequest]) -> list[Sequence]:
        """Prefill `requests` together and merge them into the batch; returns them with their first token."""
        length = max(r.prompt.size for r in requests)
        ids = torch.zeros((len(requests), length), dtype=torch.long)
        mask = torch.zeros((len(requests), length), dtype=torch.long)
        for row, request in enumerate(requests):
            n = request.prompt.size
            ids[row, length - n:] = torch.from_numpy(request.prompt.astype("int64"))
            mask[row, length - n:] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        output = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        new = [Sequence(r) for r in requests]
        tokens = self._choose(output.logits[:, -1, :].float(), new)
        for sequence, token in zip(new, tokens):
            sequence.append(token)
        self._merge(output.past_key_values, mask, torch.tensor(tokens, device=self.device), mask.sum(dim=-1), new)
        return new

    def _merge(self, cache, mask, last_tokens, positions, sequences: list[Sequence]) -> None:
        if self.cache is None:
            self.cache, self.mask, self.last_tokens, self.positions = cache, mask, last_tokens, positions
            self.sequences = list(sequences)
            return
        length = max(self.mask.shape[1], mask.shape[1])
        layers = [
            (torch.cat([_left_pad(k0, length, 2), _left_pad(k1, length, 2)]),
             torch.cat([_left_pad(v0, length, 2), _left_pad(v1, length, 2)]))
            for (k0, v0), (k1, v1) in zip(_cache_layers(self.cache), _cache_layers(cache))
        ]
        self.cache = _cache_from_layers(layers)
        self.mask = torch.cat([_left_pad(self.mask, length, 1), _left_pad(mask, length, 1)])
        self.last_tokens = torch.cat([self.last_tokens, last_tokens])
        self.positions = torch.cat([self.positions, positions])
        self.sequences.extend(sequences)

    @torch.inference_mode()
    def step(self) -> None:
        """Decode one token for every running sequence."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self), 1))], dim=1)
        output = self.model(
            input_ids=self.last_tokens[:, None], attention_mask=self.mask, position_ids=self.positions[:, None],
            past_key_values=self.cache, use_cache=True,
        )
        self.cache = output.past_key_values
        tokens = self._choose(output.logits[:, -1, :].float(), self.sequences)
        for sequence, token in zip(self.sequences, tokens):
            sequence.append(token)
        self.last_tokens = torch.tensor(tokens, device=self.device)
        self.positions = self.positions + 1

    def evict_finished(self) -> list[Sequence]:
        """Remove finished sequences from the batch and return them."""
        done = [s for s in self.sequences if s.finished]
        if not done:
            return done
        keep = [row for row, s in enumerate(self.sequences) if not s.finished]
        self.sequences = [self.sequences[row] for row in keep]
        if not keep:
            self.cache = self.mask = self.last_tokens = self.positions = None
            return done
        index = torch.tensor(keep, device=self.device)
        mask = self.mask[index]
        # Drop the columns that are padding in every remaining row.
        start = int((mask.sum(dim=0) > 0).nonzero()[0])
        layers = [(k[index, :, start:], v[index, :, start:]) for k, v in _cache_layers(self.cache)]
        self.cache = _cache_from_layers(layers)
        self.mask = mask[:, start:]
        self.last_tokens = self.last_tokens[index]
        self.positions = self.positions[index]
        return done
