"""`python -m sut <overrides>` (also `mpirun -n N python -m sut ...`): one loadgen run of the SUT."""
from llmkit.config.app import hydra_app
from sut.run import run_benchmark

# Validation runs inside run_benchmark, once, on rank 0.
main = hydra_app(run_benchmark, validate=lambda cfg: None)

if __name__ == "__main__":
    main()
