"""The two benchmark tokenizers, with ids identical to their reference implementations.

- Mixtral: sentencepiece over `tokenizer.model` (the file PyPI `mistral-common` ships as data/tokenizer.model.v1).
  sentencepiece is used directly: transformers' Llama tokenizers differ from it on runs of spaces.
- Llama 3: tiktoken BPE over `tokenizer.model` (the file PyPI `llama-models` ships as llama3/tokenizer.model), with
  the Llama 3 split pattern and its 256 special tokens.
A checkpoint brings its own tokenizer: `load_tokenizer(checkpoint_dir)` picks the file it finds there.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol, Sequence

from llmkit.benchmarks import TokenizerKind
from llmkit.errors import UserError


class Tokenizer(Protocol):
    kind: TokenizerKind
    vocab_size: int
    bos_id: int
    eos_ids: tuple[int, ...]

    def encode(self, text: str, *, bos: bool = False) -> list[int]: ...

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str: ...


class SentencePieceTokenizer:
    kind = TokenizerKind.SENTENCEPIECE

    def __init__(self, model_file: Path):
        import sentencepiece

        self.model_file = model_file
        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self.vocab_size = self._sp.vocab_size()
        self.bos_id = self._sp.bos_id()
        self.eos_ids = (self._sp.eos_id(),)

    def encode(self, text: str, *, bos: bool = False) -> list[int]:
        ids = self._sp.encode(text)
        return [self.bos_id, *ids] if bos else ids

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        ids = [int(i) for i in ids]
        if skip_special:
            ids = [i for i in ids if not self._sp.is_control(i)]
        return self._sp.decode(ids)

    def piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(token_id)


# The Llama 3 pre-tokenizer split pattern and special-token layout (facts of the Llama 3 tokenizer format).
LLAMA3_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
LLAMA3_NAMED_SPECIAL_TOKENS = (
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
    "<|eot_id|>", "<|python_tag|>", "<|image|>",
)
LLAMA3_NUM_SPECIAL_TOKENS = 256


def llama3_special_tokens(num_base_tokens: int) -> dict[str, int]:
    named = list(LLAMA3_NAMED_SPECIAL_TOKENS)
    reserved = [
        f"<|reserved_special_token_{2 + i}|>" for i in range(LLAMA3_NUM_SPECIAL_TOKENS - len(named))
    ]
    return {token: num_base_tokens + i for i, token in enumerate(named + reserved)}


def read_tiktoken_ranks(model_file: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in model_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


class TiktokenTokenizer:
    kind = TokenizerKind.TIKTOKEN

    def __init__(self, model_file: Path):
        import tiktoken

        self.model_file = model_file
        ranks = read_tiktoken_ranks(model_file)
        self.special_tokens = llama3_special_tokens(len(ranks))
        self._encoding = tiktoken.Encoding(
            name=model_file.name, pat_str=LLAMA3_SPLIT_PATTERN, mergeable_ranks=ranks,
            special_tokens=self.special_tokens,
        )
        self._special_ids = frozenset(self.special_tokens.values())
        self.vocab_size = len(ranks) + len(self.special_tokens)
        self.bos_id = self.special_tokens["<|begin_of_text|>"]
        self.eos_ids = tuple(
            self.special_tokens[t] for t in ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>")
        )

    def encode(self, text: str, *, bos: bool = False) -> list[int]:
        # Special-token text inside the prompt (chat headers) is encoded as the special token, as the
        # reference's HF tokenizer does.
        ids = self._encoding.encode(text, allowed_special="all")
        return [self.bos_id, *ids] if bos else ids

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        ids = [int(i) for i in ids]
        if skip_special:
            ids = [i for i in ids if i not in self._special_ids]
        return self._encoding.decode(ids)


@dataclass(frozen=True)
class TokenizerFile:
    kind: TokenizerKind
    path: Path


def bundled_tokenizer_file(kind: TokenizerKind) -> TokenizerFile:
    """The real tokenizer file as shipped inside a PyPI package (nothing is downloaded)."""
    if kind is TokenizerKind.SENTENCEPIECE:
        path = resources.files("mistral_common") / "data" / "tokenizer.model.v1"
    else:
        path = resources.files("llama_models") / "llama3" / "tokenizer.model"
    return TokenizerFile(kind, Path(str(path)))


def detect_tokenizer_file(checkpoint_dir: Path) -> TokenizerFile:
    """Find a checkpoint's tokenizer: sentencepiece or tiktoken `tokenizer.model` (also under original/)."""
    for candidate in (checkpoint_dir / "tokenizer.model", checkpoint_dir / "original" / "tokenizer.model"):
        if candidate.is_file():
            with candidate.open("rb") as f:
                head = f.read(64)
            # A tiktoken BPE file is text lines "<base64> <rank>"; a sentencepiece model is a protobuf.
            is_text = all(b in b"\n\r\t =+/" or 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 for b in head)
            return TokenizerFile(TokenizerKind.TIKTOKEN if is_text else TokenizerKind.SENTENCEPIECE, candidate)
    raise UserError(
        f"no tokenizer.model in {checkpoint_dir} (nor in its original/ folder); copy the checkpoint's "
        "tokenizer.model there"
    )


@lru_cache(maxsize=8)
def _load(kind: TokenizerKind, path: Path) -> Tokenizer:
    try:
        if kind is TokenizerKind.SENTENCEPIECE:
            return SentencePieceTokenizer(path)
        return TiktokenTokenizer(path)
    except (ValueError, RuntimeError) as error:  # sentencepiece's and the tiktoken file's parsing, on a damaged file
        raise UserError(f"{path} is not a valid {kind.value} tokenizer.model ({type(error).__name__}); copy the "
                        "checkpoint's tokenizer files again") from None


def load_tokenizer(source: TokenizerFile | Path) -> Tokenizer:
    """Load from a tokenizer file description or a checkpoint directory."""
    file = source if isinstance(source, TokenizerFile) else detect_tokenizer_file(Path(source))
    return _load(file.kind, file.path)


def cleans_up_spaces(checkpoint_dir: Path | None, default: bool) -> bool:
    """The checkpoint's `clean_up_tokenization_spaces` (tokenizer_config.json), which Hugging Face's decode applies.

    `default` (the official checkpoint's value) holds when there is no checkpoint or its config does not say.
    """
    path = checkpoint_dir / "tokenizer_config.json" if checkpoint_dir is not None else None
    if path is None or not path.is_file():
        return default
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("clean_up_tokenization_spaces", default)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise UserError(f"{path} is not a JSON object; restore the checkpoint's tokenizer_config.json") from None
    if not isinstance(value, bool):
        raise UserError(f"{path}: clean_up_tokenization_spaces is {value!r}, not true or false; fix that file")
    return value
