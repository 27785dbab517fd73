"""The top floor: the `llmkit` console script, the pipeline and the launchers. Nothing below imports it."""
