# Benchmarks (see docs/benchmarks.md and bench/run.sh).
.PHONY: bench bench-quick bench-setup

bench:
	BENCH_COMMAND="make bench" bench/run.sh full

bench-quick:
	BENCH_COMMAND="make bench-quick" bench/run.sh quick

bench-setup:
	bench/run.sh setup
