"""Write complete Hugging Face checkpoints of small models of the real architectures, with seeded random weights.

`tiny-mixtral` is a MixtralForCausalLM (4 experts, top-2 routing) and `tiny-llama3` a LlamaForCausalLM with
grouped-query attention; both carry the real benchmark vocabulary and tokenizer, so every id a benchmark dataset
holds is valid for them. Their outputs are meaningless: they exist to run the real machinery end to end.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B, TokenizerKind
from llmkit.config.schema import TinyArchitecture
from llmkit.errors import UserError
from llmkit.tokenizers import LLAMA3_SPLIT_PATTERN, bundled_tokenizer_file, llama3_special_tokens

log = logging.getLogger(__name__)

MANIFEST = "llmkit_tiny.json"
# 2: tokenizer configs state clean_up_tokenization_spaces as the official checkpoints do (true for Llama 3.1).
FACTORY_VERSION = 2


def _mixtral_config():
    from transformers import MixtralConfig

    return MixtralConfig(
        vocab_size=MIXTRAL_8X7B.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        max_position_embeddings=32768, rope_theta=1e6, sliding_window=None, tie_word_embeddings=False,
        bos_token_id=MIXTRAL_8X7B.bos_id, eos_token_id=MIXTRAL_8X7B.eos_id, architectures=["MixtralForCausalLM"],
    )


def _llama3_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=LLAMA3_1_405B.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072, rope_theta=500000.0,
        tie_word_embeddings=True, bos_token_id=LLAMA3_1_405B.bos_id, eos_token_id=list(LLAMA3_1_405B.eos_ids),
        architectures=["LlamaForCausalLM"],
    )


def _write_sentencepiece_tokenizer(directory: Path) -> None:
    shutil.copyfile(bundled_tokenizer_file(TokenizerKind.SENTENCEPIECE).path, directory / "tokenizer.model")
    config = {
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": True, "model_max_length": 32768,
        "clean_up_tokenization_spaces": MIXTRAL_8X7B.clean_up_tokenization_spaces,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def _write_tiktoken_tokenizer(directory: Path) -> None:
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    source = bundled_tokenizer_file(TokenizerKind.TIKTOKEN).path
    (directory / "original").mkdir()
    shutil.copyfile(source, directory / "original" / "tokenizer.model")
    special = list(llama3_special_tokens(LLAMA3_1_405B.vocab_size - 256))
    converter = TikTokenConverter(vocab_file=str(source), pattern=LLAMA3_SPLIT_PATTERN, additional_special_tokens=special)
    # As the official Llama-3.1 checkpoint's tokenizer_config.json: its decode cleans up tokenization spaces.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=converter.converted(), bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
        clean_up_tokenization_spaces=LLAMA3_1_405B.clean_up_tokenization_spaces, model_max_length=131072,
    )
    tokenizer.save_pretrained(str(directory))


def write_tiny_checkpoint(architecture: TinyArchitecture, directory: Path, seed: int = 0) -> Path:
    """Write the checkpoint atomically (a temporary sibling directory renamed into place; an older factory's
    checkpoint of the same model is replaced only once the new one is complete)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    config = _mixtral_config() if architecture is TinyArchitecture.mixtral else _llama3_config()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.to(torch.bfloat16).save_pretrained(str(staging), safe_serialization=True)
        GenerationConfig(
            bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, do_sample=False,
            max_new_tokens=(MIXTRAL_8X7B if architecture is TinyArchitecture.mixtral else LLAMA3_1_405B).max_new_tokens,
        ).save_pretrained(str(staging))
        if architecture is TinyArchitecture.mixtral:
            _write_sentencepiece_tokenizer(staging)
        else:
            _write_tiktoken_tokenizer(staging)
        manifest = {"architecture": architecture.value, "seed": seed, "factory_version": FACTORY_VERSION}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if directory.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            directory.rename(retired / directory.name)
            staging.rename(directory)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote tiny-%s checkpoint (seed %d) to %s", architecture.value, seed, directory)
    return directory


def ensure_tiny_checkpoint(architecture: TinyArchitecture, directory: Path, seed: int = 0) -> Path:
    """Reuse the checkpoint at `directory` when it is this tiny model, write it when absent, refuse otherwise."""
    manifest_path = directory / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        wanted = {"architecture": architecture.value, "seed": seed, "factory_version": FACTORY_VERSION}
        if manifest == wanted:
            return directory
        older = isinstance(manifest.get("factory_version"), int) and manifest["factory_version"] < FACTORY_VERSION
        if older and {**manifest, "factory_version": FACTORY_VERSION} == wanted:
            log.info("rewriting %s: it was made by an older version of the tiny-model factory", directory)
            return write_tiny_checkpoint(architecture, directory, seed)
        raise UserError(
            f"{directory} holds a different tiny model ({manifest}); remove it or set model.path= elsewhere"
        )
    if directory.exists() and any(directory.iterdir()):
        raise UserError(
            f"{directory} exists and is not a tiny-{architecture.value} checkpoint; set model.path= to a new directory"
        )
    if directory.exists():
        directory.rmdir()
    return write_tiny_checkpoint(architecture, directory, seed)
