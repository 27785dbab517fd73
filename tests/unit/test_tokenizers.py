from __future__ import annotations

import pytest

from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B, TokenizerKind
from llmkit.tokenizers import bundled_tokenizer_file, detect_tokenizer_file, load_tokenizer

TEXTS = [
    "Hello world",
    "  leading spaces and   runs of    spaces\n\n\ttabs",
    "Numbers 1234567 and 3.14159, unicode: naïve café ✓ 日本語",
    "def f(x):\n    return x ** 2\n```\n",
]


@pytest.fixture(scope="module")
def llama3():
    return load_tokenizer(bundled_tokenizer_file(TokenizerKind.TIKTOKEN))


@pytest.fixture(scope="module")
def mixtral():
    return load_tokenizer(bundled_tokenizer_file(TokenizerKind.SENTENCEPIECE))


def test_llama3_facts(llama3):
    assert llama3.vocab_size == LLAMA3_1_405B.vocab_size == 128256
    assert llama3.bos_id == 128000
    assert llama3.eos_ids[0] == 128009 == LLAMA3_1_405B.eos_id
    assert set(llama3.eos_ids) == {128009, 128001, 128008}


@pytest.mark.parametrize("text", TEXTS)
def test_llama3_ids_equal_the_reference_tokenizer(llama3, text):
    from llama_models.llama3.tokenizer import Tokenizer as Reference

    reference = Reference.get_instance()
    assert llama3.encode(text) == reference.encode(text, bos=False, eos=False)
    assert llama3.decode(llama3.encode(text)) == text


def test_llama3_chat_headers_are_special_tokens(llama3):
    ids = llama3.encode("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    assert ids[0] == 128000 and ids[1] == 128006 and ids[-1] == 128009
    assert llama3.decode(ids) == "user\n\nHi"


def test_mixtral_facts(mixtral):
    assert mixtral.vocab_size == MIXTRAL_8X7B.vocab_size == 32000
    assert (mixtral.bos_id, mixtral.eos_ids) == (1, (2,))


@pytest.mark.parametrize("text", TEXTS)
def test_mixtral_ids_equal_sentencepiece(mixtral, text):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(mixtral.model_file))
    assert mixtral.encode(text) == processor.encode(text)
    assert mixtral.encode(text, bos=True)[0] == 1
    assert mixtral.decode([1, *mixtral.encode(text), 2]) == processor.decode(processor.encode(text))


def test_mixtral_stop_sequence_ids_match_the_registry(mixtral):
    # "\n```\n" after other text encodes to the registry's ids (a lone one gets a leading "▁" piece).
    assert tuple(mixtral.encode("a" + MIXTRAL_8X7B.stop_sequence_text)[1:]) == MIXTRAL_8X7B.stop_sequence_ids


def test_checkpoints_bring_their_own_tokenizer(artifacts):
    mixtral_file = detect_tokenizer_file(artifacts / "models" / "tiny-mixtral")
    llama_file = detect_tokenizer_file(artifacts / "models" / "tiny-llama3")
    assert mixtral_file.kind is TokenizerKind.SENTENCEPIECE
    assert llama_file.kind is TokenizerKind.TIKTOKEN and llama_file.path.parent.name == "original"


def test_checkpoint_without_tokenizer_is_a_clear_error(tmp_path):
    from llmkit.errors import UserError

    with pytest.raises(UserError, match="no tokenizer.model"):
        detect_tokenizer_file(tmp_path)


def test_decoding_follows_the_checkpoints_clean_up_setting(artifacts, tmp_path):
    """The reference decodes with the checkpoint's Hugging Face tokenizer, which applies its config's
    clean_up_tokenization_spaces: the kit's decode must give the same text both ways."""
    import json
    import shutil

    from transformers import AutoTokenizer

    from evaluation.text import decode
    from llmkit.tokenizers import cleans_up_spaces

    tiny = artifacts / "models" / "tiny-llama3"
    text = "Hello , world . Is it ? Yes ! I 'm here and it 's fine , is n't it"
    ids = load_tokenizer(tiny).encode(text)
    # tiny-llama3 says true, as the official Llama-3.1-405B-Instruct tokenizer_config.json does.
    assert cleans_up_spaces(tiny, default=False) is True
    assert decode(ids, LLAMA3_1_405B, cleans_up_spaces(tiny, False)) == \
        AutoTokenizer.from_pretrained(str(tiny)).decode(ids, skip_special_tokens=True)
    plain = tmp_path / "plain"
    shutil.copytree(tiny, plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    (plain / "tokenizer_config.json").write_text(json.dumps({**config, "clean_up_tokenization_spaces": False}))
    assert cleans_up_spaces(plain, default=True) is False
    decoded = decode(ids, LLAMA3_1_405B, cleans_up_spaces(plain, True))
    assert decoded == AutoTokenizer.from_pretrained(str(plain)).decode(ids, skip_special_tokens=True) == text
    # Without a tokenizer config, the official checkpoint's value holds.
    assert cleans_up_spaces(None, LLAMA3_1_405B.clean_up_tokenization_spaces) is True
    assert cleans_up_spaces(tmp_path, MIXTRAL_8X7B.clean_up_tokenization_spaces) is False
