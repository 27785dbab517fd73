"""Model checkpoints: the small random-weight models the kit makes, and checks on a user's checkpoint."""
