"""llmkit: the shared core of the kit (configuration, benchmark facts, datasets, tokenizers, small models)."""
