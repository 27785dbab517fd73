"""Test double of TensorRT-LLM 1.2.1's `tensorrt_llm.sampling_params` (the LLM API's SamplingParams).

Mimics NVIDIA/TensorRT-LLM tensorrt_llm/sampling_params.py @ 000a01de: a keyword-only dataclass (positional
arguments and unknown names are TypeErrors); max_tokens defaults to 32, exclude_input_from_output to True,
detokenize to True, end_id/min_tokens/top_k to None; pad_id follows end_id; best_of defaults to n and greedy decoding
refuses best_of > 1; stop_token_ids are single-token stop words, `stop` strings need the tokenizer (_setup, which the
LLM runs only when end_id is None). Decoding in the double is always greedy: sampling fields are accepted and have no
effect.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple, Union


@dataclass(slots=True, kw_only=True)
class SamplingParams:
    end_id: Optional[int] = None
    pad_id: Optional[int] = None
    max_tokens: int = 32
    bad: Optional[Union[str, List[str]]] = None
    bad_token_ids: Optional[List[int]] = None
    _bad_word_ids: Optional[List[List[int]]] = field(default=None, init=False, repr=False)
    stop: Optional[Union[str, List[str]]] = None
    stop_token_ids: Optional[List[int]] = None
    include_stop_str_in_output: bool = False
    _stop_word_ids: Optional[List[List[int]]] = field(default=None, init=False, repr=False)
    embedding_bias: Any = None
    logits_processor: Any = None
    apply_batched_logits_processor: bool = False
    n: int = 1
    best_of: Optional[int] = None
    use_beam_search: bool = False
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    top_p_min: Optional[float] = None
    top_p_reset_ids: Optional[int] = None
    top_p_decay: Optional[float] = None
    seed: Optional[int] = None
    temperature: Optional[float] = None
    min_tokens: Optional[int] = None
    beam_search_diversity_rate: Optional[float] = None
    repetition_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    length_penalty: Optional[float] = None
    early_stopping: Optional[int] = None
    no_repeat_ngram_size: Optional[int] = None
    min_p: Optional[float] = None
    beam_width_array: Optional[List[int]] = None
    logprobs: Optional[int] = None
    prompt_logprobs: Optional[int] = None
    return_context_logits: bool = False
    return_generation_logits: bool = False
    exclude_input_from_output: bool = True
    return_encoder_output: bool = False
    return_perf_metrics: bool = False
    additional_model_outputs: Any = None
    lookahead_config: Any = None
    guided_decoding: Any = None
    ignore_eos: bool = False
    detokenize: bool = True
    add_special_tokens: bool = True
    truncate_prompt_tokens: Optional[int] = None
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True

    def __post_init__(self):
        if self.pad_id is None:
            self.pad_id = self.end_id
        self.best_of = self.best_of or self.n
        self._validate()

    def _validate(self):
        if self.best_of < self.n:
            raise ValueError(f"best_of ({self.best_of}) cannot be less than n ({self.n})")
        if self.best_of > 1 and self._greedy_decoding and not os.environ.get("TLLM_ALLOW_N_GREEDY_DECODING"):
            raise ValueError(f"Greedy decoding in the LLM API does not allow multiple returns. Please set to "
                             f"best_of=1, got best_of={self.best_of}. Please set to best_of=1 or set an environment "
                             f"variable TLLM_ALLOW_N_GREEDY_DECODING=1 to allow best_of > 1 under the greedy decoding.")
        if self.truncate_prompt_tokens is not None and self.truncate_prompt_tokens < 1:
            raise ValueError(f"truncate_prompt_tokens must be >= 1, got {self.truncate_prompt_tokens}")

    @property
    def _greedy_decoding(self) -> bool:
        return (not self.use_beam_search and (self.top_k is None or self.top_k == 1)
                and (self.top_p is None or self.top_p == 0.0))

    def _setup(self, tokenizer, add_special_tokens: bool = False) -> "SamplingParams":
        if self.end_id is None:
            self.end_id = tokenizer.eos_token_id
            self.pad_id = tokenizer.pad_token_id
            if self.pad_id is None:
                self.pad_id = self.end_id
        for source, target in (("bad", "_bad_word_ids"), ("stop", "_stop_word_ids")):
            value = getattr(self, source)
            if value is not None:
                strs = [value] if isinstance(value, str) else value
                setattr(self, target, [tokenizer.encode(s, add_special_tokens=add_special_tokens) for s in strs])
        return self

    def _get_stop_words(self) -> List[List[int]]:
        words = [[i] for i in self.stop_token_ids] if self.stop_token_ids else []
        if self.stop is None:
            return words
        if self._stop_word_ids is None:
            raise RuntimeError(f"{self.__class__.__name__}.stop ({self.stop}) is not processed by tokenizer, "
                               "please call the setup method.")
        return words + self._stop_word_ids

    def _get_stop_reasons_and_words(self) -> List[Tuple[Union[str, int], List[int]]]:
        reasons: list = list(self.stop_token_ids or [])
        if self.stop is not None:
            reasons.extend([self.stop] if isinstance(self.stop, str) else self.stop)
        return list(zip(reasons, self._get_stop_words()))
