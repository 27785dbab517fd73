"""MLPerf datasets: the official files (checked before unpickling), parquet/jsonl, and the bundled sample."""
