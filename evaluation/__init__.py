"""Evaluation: accuracy metrics per benchmark (with sandboxed MBXP execution), reports and verdicts."""
