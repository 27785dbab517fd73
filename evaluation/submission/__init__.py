"""The submission tree: packaging run directories as MLCommons expects them, and checking a tree."""
