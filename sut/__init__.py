"""The System Under Test: loadgen glue, token accounting, backends and MPI launch."""
