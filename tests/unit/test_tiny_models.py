from __future__ import annotations

import json

import pytest

from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B
from llmkit.config.schema import TinyArchitecture
from llmkit.errors import UserError
from llmkit.models.checkpoint import inspect_checkpoint
from llmkit.models.tiny import ensure_tiny_checkpoint
from llmkit.tokenizers import load_tokenizer


def test_tiny_mixtral_is_a_complete_mixtral_checkpoint(artifacts):
    path = artifacts / "models" / "tiny-mixtral"
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["MixtralForCausalLM"]
    assert config["vocab_size"] == 32000
    assert (config["num_local_experts"], config["num_experts_per_tok"]) == (4, 2)
    assert json.loads((path / "generation_config.json").read_text())["eos_token_id"] == 2
    assert inspect_checkpoint(path, MIXTRAL_8X7B).architecture == "MixtralForCausalLM"
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 20 * 2**20
    assert load_tokenizer(path).vocab_size == 32000


def test_tiny_llama3_is_a_complete_llama_checkpoint_with_gqa(artifacts):
    path = artifacts / "models" / "tiny-llama3"
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["vocab_size"] == 128256
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    assert 128009 in json.loads((path / "generation_config.json").read_text())["eos_token_id"]
    assert inspect_checkpoint(path, LLAMA3_1_405B).vocab_size == 128256
    assert load_tokenizer(path).eos_ids[0] == 128009


def test_hf_tokenizers_in_the_checkpoints_agree_with_ours(artifacts):
    from transformers import AutoTokenizer

    text = "The answer is 42.\n```python\nprint('hi')\n```\n"
    path = artifacts / "models" / "tiny-llama3"
    assert AutoTokenizer.from_pretrained(path).encode(text, add_special_tokens=False) == load_tokenizer(path).encode(text)


def test_weights_are_seeded_and_reproducible(artifacts, tmp_path):
    from safetensors.torch import load_file

    copy = ensure_tiny_checkpoint(TinyArchitecture.mixtral, tmp_path / "again")
    original = load_file(artifacts / "models" / "tiny-mixtral" / "model.safetensors")
    again = load_file(copy / "model.safetensors")
    assert original.keys() == again.keys()
    assert all(original[k].equal(again[k]) for k in original)


def test_existing_directory_is_never_overwritten(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "precious.txt").write_text("keep")
    with pytest.raises(UserError, match="is not a tiny-mixtral checkpoint"):
        ensure_tiny_checkpoint(TinyArchitecture.mixtral, target)
    assert (target / "precious.txt").read_text() == "keep"


def test_another_tiny_model_in_place_is_refused(artifacts):
    with pytest.raises(UserError, match="holds a different tiny model"):
        ensure_tiny_checkpoint(TinyArchitecture.llama3, artifacts / "models" / "tiny-mixtral")


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "has no config.json"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{not json")), "is not valid JSON"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')),
         "GPT2LMHeadModel checkpoint"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text(
            '{"architectures": ["LlamaForCausalLM"], "vocab_size": 128256}')), "needs 32000"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text(
            '{"architectures": ["MixtralForCausalLM"], "vocab_size": 32000}')), "no weight files"),
    ],
)
def test_bad_checkpoints_are_clear_errors(tmp_path, setup, match):
    path = tmp_path / "ckpt"
    setup(path)
    with pytest.raises(UserError, match=match):
        inspect_checkpoint(path, MIXTRAL_8X7B)


def test_an_older_factorys_tiny_checkpoint_is_rewritten(tmp_path):
    from llmkit.config.schema import TinyArchitecture
    from llmkit.models.tiny import FACTORY_VERSION, MANIFEST, ensure_tiny_checkpoint

    directory = ensure_tiny_checkpoint(TinyArchitecture.llama3, tmp_path / "tiny-llama3")
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, "factory_version": FACTORY_VERSION - 1}))
    config = directory / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "clean_up_tokenization_spaces": False}))
    ensure_tiny_checkpoint(TinyArchitecture.llama3, directory)
    assert json.loads((directory / MANIFEST).read_text())["factory_version"] == FACTORY_VERSION
    assert json.loads(config.read_text())["clean_up_tokenization_spaces"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-llama3"]
