"""The MLPerf Inference rounds the kit submits to, and what each round demands of a submission.

v6.1 drops mixtral-8x7b and llama3.1-405b, so v6.0 (the default) and v5.1 are the rounds for this kit. Sources: the
mlperf.conf that each round's loadgen release compiles in (the seeds), and that round's submission checker
(tools/submission in mlcommons/inference) for the tree's layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from llmkit.errors import UserError, did_you_mean


# Named as the rounds are written ("v6.0"), so that `submission.round=v6.0` works: OmegaConf matches an override
# against the members' names.
SubmissionRound = Enum("SubmissionRound", [("v6.0", "v6.0"), ("v5.1", "v5.1")], type=str)
V6_0, V5_1 = SubmissionRound("v6.0"), SubmissionRound("v5.1")


SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")


@dataclass(frozen=True)
class Round:
    name: Enum  # a SubmissionRound
    # The loadgen seeds the round's mlperf.conf sets; a run with other seeds is not a result of this round.
    seeds: dict[str, int]
    # The PyPI mlcommons-loadgen release to install for the round (its built-in mlperf.conf has the round's seeds).
    loadgen_pin: str
    # v5.x keeps TEST06 under compliance/ and measurements under measurements/, as trees beside results/.
    separate_compliance_tree: bool
    # Where the submission's source code goes: src/ (v6.0) or code/ (v5.x).
    code_dir: str

    def loadgen_fix(self) -> str:
        return f"pip install mlcommons-loadgen=={self.loadgen_pin}"


ROUNDS: dict[Enum, Round] = {
    V6_0: Round(
        V6_0,
        seeds={"qsl_rng_seed": 2465351861681999779, "sample_index_rng_seed": 14276810075590677512,
               "schedule_rng_seed": 3936089224930324775},
        loadgen_pin="6.0.15",  # 6.0.5 to 6.0.15 carry these seeds; 6.0.16 and later carry v6.1's
        separate_compliance_tree=False, code_dir="src",
    ),
    V5_1: Round(
        V5_1,
        seeds={"qsl_rng_seed": 1780908523862526354, "sample_index_rng_seed": 14771362308971278857,
               "schedule_rng_seed": 18209322760996052031},
        loadgen_pin="5.1.2",  # 5.1.0 to 5.1.2 carry these seeds
        separate_compliance_tree=True, code_dir="code",
    ),
}


def get_round(name: str | Enum) -> Round:
    try:
        return ROUNDS[SubmissionRound(name)]
    except ValueError:
        known = [r.value for r in SubmissionRound]
        raise UserError(f"unknown round '{name}'{did_you_mean(str(name), known)}; the kit submits to: "
                        f"{', '.join(known)}") from None


def seed_mismatches(round_: Round, seeds: dict[str, int | None]) -> list[str]:
    """One phrase per seed that differs from the round's."""
    return [f"{key} is {seeds.get(key)}, not {round_.name.value}'s {value}" for key, value in round_.seeds.items()
            if seeds.get(key) != value]
