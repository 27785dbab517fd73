"""Test double of TensorRT-LLM 1.2.1 (tests/fakes/trtllm): Request, SamplingConfig, OutputConfig, Result, Response
and IterationStats of `tensorrt_llm.bindings.executor`.

Mimics NVIDIA/TensorRT-LLM cpp/tensorrt_llm/nanobind/executor/request.cpp @ 008b2b8d and
cpp/tensorrt_llm/executor/responseImpl.h @ 3585984b:
- Request(input_token_ids, max_tokens, *, streaming=False, sampling_config=SamplingConfig(),
  output_config=OutputConfig(), end_id=None, pad_id=None, ..., stop_words=None, ...): all but the first two are
  keyword-only; the token ids go through nanobind's list caster (tensorrt_llm/_double/convert.py);
- SamplingConfig(beam_width=1, *, top_k=None, ..., min_tokens=None, ...): beam_width may be positional;
- OutputConfig(return_log_probs=False, return_context_logits=False, return_generation_logits=False,
  exclude_input_from_output=False, ...): positional allowed; exclude_input_from_output defaults to False;
- Response: `result` of an error response raises ("Cannot get the result for a response with an error: ..."), and
  `error_msg` of a good one raises too ("Cannot get the error message for a response without error");
- Result: is_final, output_token_ids (one list per beam), finish_reasons, sequence_index, is_sequence_final,
  decoding_iter, ...; IterationStats.to_json_str() with camelCase keys as JsonSerialization writes them.
"""
from __future__ import annotations

import functools
import json
from datetime import timedelta

from tensorrt_llm._double.configs import FinishReason
from tensorrt_llm._double.convert import (INT32, NoConversion, to_bool, to_int, to_opt_float, to_opt_int,
                                          to_opt_token_lists, to_tokens)
from tensorrt_llm._double.engine import full_row
from tensorrt_llm._double.settings import TllmError

SAMPLING_FIELDS = ("top_k", "top_p", "top_p_min", "top_p_reset_ids", "top_p_decay", "seed", "temperature",
                   "min_tokens", "beam_search_diversity_rate", "repetition_penalty", "presence_penalty",
                   "frequency_penalty", "length_penalty", "early_stopping", "no_repeat_ngram_size",
                   "num_return_sequences", "min_p", "beam_width_array")
INT_SAMPLING = {"top_k", "top_p_reset_ids", "seed", "min_tokens", "early_stopping", "no_repeat_ngram_size",
                "num_return_sequences"}
OTHER_REQUEST_ARGS = ("position_ids", "bad_words", "embedding_bias", "external_draft_tokens_config",
                      "prompt_tuning_config", "multimodal_input", "multimodal_embedding", "mrope_config",
                      "lora_config", "lookahead_config", "kv_cache_retention_config", "logits_post_processor_name",
                      "logits_post_processor", "encoder_input_token_ids", "priority", "type", "context_phase_params",
                      "encoder_input_features", "encoder_output_length", "cross_attention_mask",
                      "num_return_sequences", "eagle_config", "skip_cross_attn_blocks", "guided_decoding_params",
                      "language_adapter_uid", "allotted_time_ms")


_new = object.__new__


def _incompatible(cls: str, error: Exception) -> TypeError:
    return TypeError(f"{cls}.__init__(): incompatible function arguments ({error})")


class SamplingConfig:
    def __init__(self, beam_width=1, *, top_k=None, top_p=None, top_p_min=None, top_p_reset_ids=None,
                 top_p_decay=None, seed=None, temperature=None, min_tokens=None, beam_search_diversity_rate=None,
                 repetition_penalty=None, presence_penalty=None, frequency_penalty=None, length_penalty=None,
                 early_stopping=None, no_repeat_ngram_size=None, num_return_sequences=None, min_p=None,
                 beam_width_array=None):
        given = dict(locals())
        try:
            self.beam_width = to_int(beam_width)
            for name in SAMPLING_FIELDS:
                value = given[name]
                if name == "beam_width_array":
                    value = None if value is None else to_tokens(value, name)
                elif name == "seed":
                    value = to_opt_int(value, (0, 2 ** 64 - 1), name)
                else:
                    value = to_opt_int(value, INT32, name) if name in INT_SAMPLING else to_opt_float(value, name)
                setattr(self, name, value)
        except NoConversion as error:
            raise _incompatible("SamplingConfig", error) from None
        if self.beam_width != 1:
            raise NotImplementedError("(test double) only beam_width=1 is supported")

    def __repr__(self) -> str:
        return f"SamplingConfig(beam_width={self.beam_width}, top_k={self.top_k}, min_tokens={self.min_tokens})"


class OutputConfig:
    def __init__(self, return_log_probs=False, return_context_logits=False, return_generation_logits=False,
                 exclude_input_from_output=False, return_encoder_output=False, return_perf_metrics=False,
                 additional_model_outputs=None):
        try:
            self.return_log_probs = to_bool(return_log_probs)
            self.return_context_logits = to_bool(return_context_logits)
            self.return_generation_logits = to_bool(return_generation_logits)
            self.exclude_input_from_output = to_bool(exclude_input_from_output)
            self.return_encoder_output, self.return_perf_metrics = (to_bool(return_encoder_output),
                                                                    to_bool(return_perf_metrics))
        except NoConversion as error:
            raise _incompatible("OutputConfig", error) from None
        self.additional_model_outputs = additional_model_outputs


class Request:
    BATCHED_POST_PROCESSOR_NAME = "batched"

    def __init__(self, input_token_ids, max_tokens, *, streaming=False, sampling_config=None, output_config=None,
                 end_id=None, pad_id=None, stop_words=None, client_id=None, return_all_generated_tokens=False,
                 **others):
        unknown = sorted(set(others) - set(OTHER_REQUEST_ARGS))
        if unknown:
            raise TypeError(f"Request.__init__() got an unexpected keyword argument {unknown[0]!r}")
        try:
            self._input_token_ids = to_tokens(input_token_ids, "input_token_ids")
            self._max_tokens = to_int(max_tokens, INT32, "max_tokens")
            self.streaming = to_bool(streaming, "streaming")
            self.end_id, self.pad_id = to_opt_int(end_id, INT32, "end_id"), to_opt_int(pad_id, INT32, "pad_id")
            self.stop_words = to_opt_token_lists(stop_words, "stop_words")
            self.bad_words = to_opt_token_lists(others.get("bad_words"), "bad_words")
            self.client_id = to_opt_int(client_id, (0, 2 ** 64 - 1), "client_id")
            self.return_all_generated_tokens = to_bool(return_all_generated_tokens)
        except NoConversion as error:
            raise _incompatible("Request", error) from None
        for name, value, kind in (("sampling_config", sampling_config, SamplingConfig),
                                  ("output_config", output_config, OutputConfig)):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"Request.__init__(): incompatible function arguments ({name}: expected "
                                f"{kind.__name__}, got {type(value).__name__})")
        self.sampling_config = sampling_config or SamplingConfig()
        self.output_config = output_config or OutputConfig()
        if any(v is not None for k, v in others.items() if k not in ("priority", "type", "num_return_sequences")):
            raise NotImplementedError(f"(test double) unsupported Request arguments: {sorted(others)}")
        if not self._input_token_ids:
            raise TllmError("Assertion failed: (test double) input_token_ids must not be empty")

    input_token_ids = property(lambda self: list(self._input_token_ids))
    max_tokens = property(lambda self: self._max_tokens)


class TimingMetrics:
    """RequestPerfMetrics.TimingMetrics: steady-clock time points as datetime.timedelta since the clock's epoch
    (nanobind's chrono caster); last_token_time is timedelta(0) until the final response."""

    __slots__ = ("arrival_time", "first_scheduled_time", "first_token_time", "last_token_time")

    def __init__(self, arrival: float = 0.0, scheduled: float = 0.0, first: float = 0.0, last: float = 0.0):
        self.arrival_time, self.first_scheduled_time = timedelta(seconds=arrival), timedelta(seconds=scheduled)
        self.first_token_time, self.last_token_time = timedelta(seconds=first), timedelta(seconds=last)


class RequestPerfMetrics:
    """Result.request_perf_metrics with OutputConfig(return_perf_metrics=True) (timing metrics only), converted
    when read, as nanobind converts the C++ time points on access (a caller that never reads them pays nothing)."""

    __slots__ = ("_timing",)

    def __init__(self, timing: tuple[float, float, float, float] | None = None):
        self._timing = timing or ()

    timing_metrics = property(lambda self: TimingMetrics(*self._timing))


class Result:
    # The fields every response carries are slots (cheap to make: one Result per streamed token, hundreds of
    # thousands a second in load tests, where the binding makes them in C++); the rest are defaults on the class.
    __slots__ = ("is_final", "is_sequence_final", "output_token_ids", "finish_reasons", "decoding_iter",
                 "request_perf_metrics", "__dict__")
    cum_log_probs = log_probs = context_logits = generation_logits = None
    spec_dec_fast_logits_info = encoder_output = context_phase_params = None
    sequence_index = 0
    additional_outputs: list = []

    def __init__(self):
        self.is_final = self.is_sequence_final = False
        self.output_token_ids: list[list[int]] = []
        self.finish_reasons: list[FinishReason] = []
        self.decoding_iter = 0
        self.request_perf_metrics: RequestPerfMetrics | None = None

    def __repr__(self) -> str:
        return (f"Result(is_final={self.is_final}, output_token_ids={self.output_token_ids}, "
                f"finish_reasons={self.finish_reasons})")


class Response:
    # `_row` is what the engine made the response of (engine.response_row: request id, tokens, final, reason,
    # decoding iteration, client id, timing; or request id, token, decoding iteration); a good response's Result is
    # made from it when `result` is first read, as the binding converts its C++ Result on access. Responses come by
    # the thousand a second in load tests, where the binding makes them in C++: the double's hot path (`of_rows`)
    # only wraps each row.
    __slots__ = ("request_id", "_row", "_error", "_result")  # request_id: read like nanobind's C++ property

    def __init__(self, request_id, error_msg_or_result, client_id=None):
        self.request_id = to_int(request_id, (0, 2 ** 64 - 1), "request_id")
        self._row = (self.request_id, None, True, None, 0, client_id, None)
        if isinstance(error_msg_or_result, str):
            if not error_msg_or_result:
                raise TllmError("Assertion failed: Error message should not be empty")
            self._error, self._result = error_msg_or_result, None
        elif isinstance(error_msg_or_result, Result):
            self._error, self._result = None, error_msg_or_result
        else:
            raise TypeError("Response.__init__(): incompatible function arguments (expected str or Result)")

    @classmethod
    def of_rows(cls, rows: list[tuple]) -> list[Response]:
        """Good responses, one per response_row (the double's hot path)."""
        out = []
        append = out.append
        for row in rows:
            response = _new(cls)
            response.request_id, response._row, response._error, response._result = row[0], row, None, None
            append(response)
        return out

    client_id = property(lambda self: full_row(self._row)[5])

    def has_error(self) -> bool:
        return self._error is not None

    @property
    def error_msg(self) -> str:
        if self._error is None:
            raise TllmError("Cannot get the error message for a response without error")
        return self._error

    @property
    def result(self) -> Result:
        result = self._result
        if result is None:
            if self._error is not None:
                raise TllmError(f"Cannot get the result for a response with an error: {self._error}")
            row = self._row
            if len(row) == 3:  # the common streamed step, unpacked here rather than through full_row (a call)
                tokens, final, reason, decoding_iter, timing = [row[1]], False, None, row[2], None
            else:
                _, tokens, final, reason, decoding_iter, _, timing = row
            result = self._result = _new(Result)
            result.is_final = result.is_sequence_final = final
            result.output_token_ids, result.decoding_iter = [tokens], decoding_iter
            result.finish_reasons = [FinishReason[reason] if final else FinishReason.NOT_FINISHED]
            result.request_perf_metrics = None if timing is None else RequestPerfMetrics(timing)
        return result

    def __repr__(self) -> str:
        body = f"error_msg={self._error!r}" if self._error is not None else f"result={self.result!r}"
        return f"Response(request_id={self.request_id}, {body})"


@functools.cache
def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).replace("_m_s", "_ms")


class _Stats:
    """An object with snake_case attributes over a camelCase dict, serialised back by to_json_str()."""

    def __init__(self, data: dict):
        self._data = data
        for key, value in data.items():
            setattr(self, _snake(key), _Stats(value) if isinstance(value, dict) else value)

    def to_json_str(self) -> str:
        return json.dumps(self._data)


class IterationStats(_Stats):
    pass


class KvCacheStats(_Stats):
    pass
