"""How mxeval (the reference's MBXP harness, commit e09974f9) builds, compiles and runs each language.

The model's answer is cut at the first "```"; python answers are lstrip()ed; "\\_" becomes "_" (Mixtral escapes
underscores). The prompt is not prepended: the model re-emits it. A program passes when it exits 0 in time.

QUIRK (mxeval): a PHP answer without its "<?php" tag is echoed as text by php, which exits 0, so it passes.
QUIRK (mxeval): a TypeScript program counts as compiled only when tsc exits with 2 (see runner.run_problem).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from evaluation.mbxp.sandbox import SANDBOX_PATH

LANGUAGES = ("cpp", "python", "php", "javascript", "ruby", "typescript")


def extract_solution(answer: str, language: str) -> str:
    cut = answer.find("```")
    solution = answer[:cut] if cut >= 0 else answer
    if language == "python":
        solution = solution.lstrip()
    return solution.replace("\\_", "_")


@dataclass(frozen=True)
class Program:
    source_name: str
    source: str
    compile: tuple[str, ...] | None  # None: interpreted
    run: tuple[str, ...]
    # What the compile step must leave in the work directory (tsc emits JS even with type errors; which exit codes
    # count as compiled is mxeval's rule, in runner.run_problem).
    compiled_output: str | None = None


def node_modules_dir() -> Path:
    """Where the Makefile installs the pinned TypeScript and lodash (inside the virtual environment)."""
    return Path(sys.prefix) / "node" / "node_modules"


@lru_cache(maxsize=1)
def tsc_command() -> tuple[str, ...] | None:
    """TypeScript 5 (mxeval compiles with --target es5, which TypeScript 6+ removed)."""
    for candidate in (node_modules_dir() / ".bin" / "tsc", shutil.which("tsc")):
        if candidate and Path(candidate).exists():
            try:
                version = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if version.stdout.strip().startswith("Version 5."):
                return (str(candidate),)
    return None


def build_program(language: str, solution: str, test: str, entry_point: str,
                  tsc: tuple[str, ...] | None = None) -> Program:
    if language == "python":
        return Program("program.py", f"{solution}\n{test}\ncheck({entry_point})", None, ("python3", "program.py"))
    if language == "javascript":
        return Program("program.js", solution + test, None, ("node", "program.js"))
    if language == "php":
        return Program("program.php", solution + test, None, ("php", "program.php"))
    if language == "ruby":
        return Program("program.rb", solution + test, None, ("ruby", "program.rb"))
    if language == "cpp":
        return Program("program.cpp", solution + test, ("g++", "program.cpp", "-o", "program_cpp"), ("./program_cpp",),
                       compiled_output="program_cpp")
    if language == "typescript":
        tsc = tsc or tsc_command() or ("tsc",)
        return Program("program.ts", solution + test, (*tsc, "program.ts", "--target", "es5", "--lib", "es2016"),
                       ("node", "program.js"), compiled_output="program.js")
    raise ValueError(f"unknown MBXP language {language}")


def missing_runtime(language: str) -> str | None:
    """Why `language` cannot be evaluated on this machine, or None when it can."""
    needed = {"python": "python3", "javascript": "node", "php": "php", "ruby": "ruby", "cpp": "g++",
              "typescript": "node"}[language]
    if shutil.which(needed, path=SANDBOX_PATH) is None:
        return f"{needed} is not installed (make test/run installs it from Debian)"
    if language == "typescript" and tsc_command() is None:
        return "TypeScript 5 is not installed (make installs typescript@5 from npm; tsc 6+ lacks --target es5)"
    return None
