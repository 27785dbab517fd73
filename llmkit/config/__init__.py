"""Typed configuration: dataclass schemas in Hydra's ConfigStore, composed from conf/ and validated once.

schema.py holds the schema of each component; backends.py and precisions.py hold one schema per option of the
backend and precision groups (and the backend registry); load.py composes; validate.py checks what types cannot.
"""
