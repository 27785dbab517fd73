"""Each metric on hand-made cases with known answers, including the reference's quirks."""
from __future__ import annotations

import pytest

from evaluation.metrics import find_number, gsm8k_correct, niah_em, qa_em, rouge_fmeasures
from evaluation.report import accuracy_txt, judge
from evaluation.text import hf_cleanup, sent_tokenize, split_sentences
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B


@pytest.mark.parametrize(
    ("output", "number"),
    [
        ("Tom has 3 apples and buys 15 more. The answer is 18.", "18"),
        ("The answer is 1,250.", "1,250"),
        ("It drops by 3 degrees. The answer is -3.", "-3"),
        ("Half of 5 is 2.5. The answer is 2.5", "2.5"),
        ("The answer is $18 because 9 x 2 = 18.", "18"),
        ("First 4 then 7, finally 12", "12"),  # no delimiter: the last number
        ("The answer is unclear, maybe 7 or 9", "7"),  # the first number after the delimiter
        ("The answer is 5. Wait. The answer is 6.", "6"),  # the part after the last delimiter
        ("The answer is none. 3 cats", "3"),
        ("no digits at all", ""),
        ("The answer is .5", ".5"),
    ],
)
def test_gsm8k_number_extraction(output, number):
    assert find_number(output) == number


@pytest.mark.parametrize(
    ("output", "answer", "correct"),
    [
        (" 9 + 9 = 18. The answer is 18.", "18", True),
        ("The answer is 1,250.", "1250", True),  # commas are dropped from the prediction
        ("The answer is 18.0", "18", True),  # compared as floats
        ("The answer is 17.", "18", False),
        ("The answer is 18.\nQ: next question? The answer is 3.", "18", True),  # cut at the next "\nQ:"
        ("\nQ: The answer is 18.", "18", False),  # everything after the first "\nQ:" is dropped
        ("I do not know.", "18", False),
        ("The answer is 1250.", "1,250", False),  # QUIRK: a gt with a comma never parses as a float
        ("The answer is -3.", "-3", True),
    ],
)
def test_gsm8k_scoring(output, answer, correct):
    assert gsm8k_correct(output, answer) is correct


UUID = "a1b2c3d4-e5f6-4789-9abc-def012345678"


@pytest.mark.parametrize(
    ("label", "pred", "score"),
    [
        (UUID, f"The special magic uuid is: {UUID}", 100.0),
        (UUID, f"It is {UUID.upper()}.", 100.0),  # case-insensitive
        (UUID, "I could not find it.", 0.0),
        # QUIRK: the label is compared character by character, so a different uuid made of the same hex digits
        # scores the fraction of the label's characters it contains.
        (UUID, "00000000-0000-0000-0000-000000000000", 13.89),  # its 4 dashes and one 0 of 36: 5/36
        # Two predicted uuids, one label: zip pairs the first; the sum is divided by the predictions.
        (UUID, f"{UUID} and ffffffff-ffff-ffff-ffff-ffffffffffff", 50.0),
    ],
)
def test_niah_em(label, pred, score):
    assert niah_em(label, pred) == pytest.approx(score)


@pytest.mark.parametrize(
    ("label", "pred", "score"),
    [
        ("Halvorsen Foundation|the Halvorsen Foundation", "Answer: the Halvorsen Foundation", 100.0),
        ("Halvorsen Foundation|the Halvorsen Foundation", "It was funded by the halvorsen   foundation.", 100.0),
        ("1887", "Reasoning... Answer: 1886. Answer: 1887", 100.0),  # the text after the last "Answer: "
        ("1887", "Answer: 1887 or 1888", 100.0),  # normalized alternative contained in the answer
        ("1887", "Answer: 1886", 0.0),
        ("Brannock River|Brannock", "Answer: Bran", 100.0),  # QUIRK: substring of the whole label counts
        ("Brannock River|Brannock", "Answer: the Thames", 0.0),
    ],
)
def test_qa_em(label, pred, score):
    assert qa_em(label, pred) == score


def test_rouge_on_known_cases():
    text = "The cat sat on the mat.\nIt was happy."
    scores = rouge_fmeasures([text, "completely different words here"], [text, text], ("rouge1", "rougeL"), workers=1)
    assert scores["rouge1"][0] == pytest.approx(1.0) and scores["rougeL"][0] == pytest.approx(1.0)
    assert scores["rouge1"][1] == 0.0
    # Stemming: "running" and "runs" share the stem "run".
    stemmed = rouge_fmeasures(["dogs running"], ["dog runs"], ("rouge1",), workers=1)["rouge1"][0]
    assert stemmed == pytest.approx(1.0)


def test_rouge_in_parallel_equals_serial():
    preds = [f"sentence number {i} about cats and dogs" for i in range(40)]
    refs = [f"a sentence {i % 7} about dogs" for i in range(40)]
    assert rouge_fmeasures(preds, refs, ("rouge2",), workers=2) == rouge_fmeasures(preds, refs, ("rouge2",), workers=1)


def test_offline_sentence_splitting():
    assert sent_tokenize("Mr. Smith went to Washington. He arrived at 5 p.m. on Jan. 3. Then he left!") == [
        "Mr. Smith went to Washington.", "He arrived at 5 p.m. on Jan. 3.", "Then he left!",
    ]
    assert split_sentences("  One. Two?  ") == "One.\nTwo?"


def test_hf_cleanup_reproduces_the_llama_decode():
    assert hf_cleanup("Hello , world . Is it ? Yes ! I 'm here and it 's fine , is n't it") == \
        "Hello, world. Is it? Yes! I'm here and it's fine, isn't it"


def test_verdict_uses_99_percent_and_the_token_band():
    values = {"rouge1": 45.5989 * 0.99, "rouge2": 23.0, "rougeL": 31.0, "rougeLsum": 31.0, "gsm8k": 80.0,
              "mbxp": 61.0, "tokens_per_sample": 145.0}
    verdict = judge(MIXTRAL_8X7B, values, {}, {})
    status = {row.name: row.status for row in verdict.rows}
    assert status["rouge1"] == "pass"  # exactly 99% passes
    assert status["rouge2"] == "fail"  # 23.0 < 0.99 x 23.3526
    assert status["rougeLsum"] == "no target"
    assert verdict.overall == "FAIL"
    low, high = MIXTRAL_8X7B.tokens_per_sample_bounds
    assert low == pytest.approx(0.9 * 144.84) and high == pytest.approx(1.1 * 145.9)
    assert judge(MIXTRAL_8X7B, {**values, "rouge2": 24.0}, {}, {}).overall == "PASS"
    assert judge(MIXTRAL_8X7B, {**values, "rouge2": 24.0, "tokens_per_sample": 170.0}, {}, {}).overall == "FAIL"
    incomplete = judge(MIXTRAL_8X7B, {**values, "rouge2": 24.0, "mbxp": 10.0}, {}, {"mbxp": "not evaluated: ruby"})
    assert incomplete.overall == "INCOMPLETE"
    assert {r.name: r.status for r in incomplete.rows}["mbxp"] == "incomplete"
    certain = judge(MIXTRAL_8X7B, {**values, "rouge2": 24.0}, {}, {"mbxp": "not evaluated: ruby"})
    assert {r.name: r.status for r in certain.rows}["mbxp"] == "pass" and certain.overall == "INCOMPLETE"


def test_llama_verdict():
    verdict = judge(LLAMA3_1_405B, {"rougeL": 21.5, "exact_match": 89.5, "tokens_per_sample": 684.7}, {}, {})
    assert verdict.overall == "PASS"
    assert [r.name for r in verdict.rows] == ["rougeL", "exact_match", "tokens_per_sample"]


def test_accuracy_txt_matches_the_checker_regexes():
    import re

    import numpy as np

    text = accuracy_txt({"rouge1": np.float64(45.1), "gsm8k": 73.0, "gen_num": 15000, "tokens_per_sample": 144.2},
                        "ab" * 32)
    assert "np.float64" not in text
    assert re.search(r"'rouge1':\s+([\d.]+)", text).group(1) == "45.1"
    assert re.search(r"'gsm8k':\s([\d.]+)", text).group(1) == "73.0"
    assert re.search(r"'tokens_per_sample':\s([\d.]+)", text).group(1) == "144.2"
    assert text.splitlines()[1] == "hash=" + "ab" * 32
