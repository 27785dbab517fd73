"""MBXP: model-written programs in six languages, run against their tests in a sandbox."""
