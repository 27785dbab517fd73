"""The calibration set as model inputs: right-padded batches with attention masks, run with a progress bar."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm import tqdm


def model_batches(input_ids: np.ndarray, lengths: np.ndarray, batch_size: int, device: str) -> list[dict]:
    """{input_ids, attention_mask} per batch, each cut to its longest prompt."""
    import torch

    batches = []
    for start in range(0, len(lengths), batch_size):
        rows = slice(start, start + batch_size)
        width = int(lengths[rows].max())
        ids = torch.from_numpy(input_ids[rows, :width].astype(np.int64))
        mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths[rows].astype(np.int64))[:, None]).long()
        batches.append({"input_ids": ids.to(device), "attention_mask": mask.to(device)})
    return batches


def forward_loop(model, batches: Iterable[dict], description: str) -> None:
    """Run every batch through the model (no gradients): what modelopt's calibration observes."""
    import torch

    batches = list(batches)
    with torch.no_grad():
        for batch in tqdm(batches, desc=description, unit="batch", leave=False):
            model(**batch)
