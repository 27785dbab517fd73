"""A small deterministic dataset in exactly the official schema, tokenized with the benchmark's real tokenizer.

Prompt layout follows the reference datasets: mixtral rows are `<s> [INST] ... [/INST]` prompts whose token ids
start with BOS; MBXP prompts open a code block so the answer is code ending in the stop sequence "\\n```\\n";
llama3.1-405b rows use the Llama 3 chat template. The texts live in llmkit.data.sample_content.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd

from llmkit.benchmarks import BENCHMARKS, Benchmark, TokenizerKind
from llmkit.config.schema import DatasetSplit
from llmkit.data import sample_content as content
from llmkit.tokenizers import Tokenizer, bundled_tokenizer_file, load_tokenizer

GSM8K_SHOT = content.GSM8K[0]
MBXP_LANGUAGE_NAMES = {
    "cpp": "C++", "python": "Python", "php": "PHP", "javascript": "JavaScript", "ruby": "Ruby",
    "typescript": "TypeScript",
}


def mixtral_prompt(instruction: str) -> str:
    return f"<s> [INST] {instruction} [/INST]"


def _mixtral_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    # The reference tokenizer turns the leading "<s>" into BOS and encodes the rest as text.
    return tokenizer.encode(prompt.removeprefix("<s>").lstrip(), bos=True)


def _mixtral_rows(tokenizer: Tokenizer, benchmark: Benchmark) -> list[dict]:
    eos_text, eos_ids = "</s>", [benchmark.eos_id]
    stop_text, stop_ids = benchmark.stop_sequence_text, list(benchmark.stop_sequence_ids)
    rows = []
    for i, record in enumerate(content.ORCA):
        question = f"{record.system_prompt}\n\n{record.question}"
        rows.append(dict(dataset="OpenOrca", id=f"orca.{i}", question=question, input=mixtral_prompt(question),
                         ref_output=record.reference, gt_output=record.reference,
                         stop_sequence=eos_text, tok_stop_sequence=eos_ids, answer_ends_with_eos=True))
    for i, record in enumerate(content.GSM8K[1:]):
        shot = f"Q: {GSM8K_SHOT.question}\nA: {GSM8K_SHOT.reasoning}"
        question = f"{shot}\n\nQ: {record.question}\nA:"
        rows.append(dict(dataset="GSM8K", id=f"gsm8k.{i}", question=record.question, input=mixtral_prompt(question),
                         # The official answers are plain numbers (the reference compares float(gt_output)).
                         ref_output=f" {record.reasoning}", gt_output=record.answer.replace(",", ""),
                         stop_sequence=eos_text, tok_stop_sequence=eos_ids, answer_ends_with_eos=True))
    for record in content.MBXP:
        language = MBXP_LANGUAGE_NAMES[record.language]
        instruction = (
            f"Complete the following {language} code. Be concise, don't output anything that isn't necessary.\n"
            f"```{record.language}\n{record.prompt}\n```"
        )
        # The answer continues an opened code block, so it is code followed by the stop sequence.
        prompt = f"{mixtral_prompt(instruction)}```{record.language}\n"
        rows.append(dict(dataset="MBXP", id=f"{record.language}_{record.entry_point}", question=record.prompt,
                         input=prompt, ref_output=f"{record.solution}{stop_text}", gt_output=record.test,
                         stop_sequence=stop_text, tok_stop_sequence=stop_ids, answer_ends_with_eos=False))
    for row in rows:
        row["tok_input"] = _mixtral_ids(tokenizer, row["input"])
        row["tok_ref_output"] = tokenizer.encode(row["ref_output"]) + (eos_ids if row.pop("answer_ends_with_eos") else [])
        row["tok_input_len"] = len(row["tok_input"])
        row["tok_ref_output_len"] = len(row["tok_ref_output"])
    return rows


def llama3_prompt(message: str) -> str:
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{message}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def _llama_rows(tokenizer: Tokenizer) -> list[dict]:
    rows = []
    for record in content.LONG_CONTEXT:
        text = llama3_prompt(record.prompt)
        ids = tokenizer.encode(text)
        rows.append(dict(dataset=record.dataset, input=text, tok_input=ids, tok_input_len=len(ids),
                         gt_output=record.reference, metric=record.metric))
    return rows


@lru_cache(maxsize=4)
def _frame(benchmark_name: str, split: DatasetSplit) -> pd.DataFrame:
    benchmark = BENCHMARKS[benchmark_name]
    tokenizer = load_tokenizer(bundled_tokenizer_file(benchmark.tokenizer))
    if benchmark.tokenizer is TokenizerKind.SENTENCEPIECE:
        rows = _mixtral_rows(tokenizer, benchmark)
    else:
        rows = _llama_rows(tokenizer)
    frame = pd.DataFrame(rows)[list(benchmark.validation_columns)]
    if split is DatasetSplit.calibration:
        # Calibration rows carry the prompt only.
        frame = frame[["input", "tok_input", "tok_input_len"]]
    return frame


def sample_frame(benchmark: Benchmark, split: DatasetSplit = DatasetSplit.validation) -> pd.DataFrame:
    """The sample dataset as a fresh DataFrame (callers may modify it)."""
    return _frame(benchmark.name, split).copy()
