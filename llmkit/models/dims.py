"""A model's dimensions: what its size, its KV cache and its work per token follow from (no weights needed)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int  # per expert in a mixture of experts
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    num_experts: int  # 0 for a dense model
    tied_embeddings: bool
    experts_per_token: int = 0  # the router's top-k (0 for a dense model)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def attention_parameters(self) -> int:
        """One layer's attention weights (q, k, v, o)."""
        return self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)

    @property
    def expert_parameters(self) -> int:
        """One expert's (or a dense layer's) gated MLP weights."""
        return 3 * self.hidden_size * self.intermediate_size

    @property
    def embedding_parameters(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)

    @property
    def parameters(self) -> int:
        mlp = self.expert_parameters
        if self.is_moe:
            mlp = mlp * self.num_experts + self.hidden_size * self.num_experts  # experts + router
        layer = self.attention_parameters + mlp + 2 * self.hidden_size
        return self.num_layers * layer + self.embedding_parameters + self.hidden_size

    @property
    def linear_parameters(self) -> int:
        """Weights of the layers' linear modules: what a recipe quantizes (embeddings and lm_head stay)."""
        return self.parameters - self.embedding_parameters
