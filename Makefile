# Benchmarks (see docs/benchmarks.md and bench/run.sh).
.PHONY: bench bench-quick bench-setup bench-admin

bench:
	BENCH_COMMAND="make bench" bench/run.sh full

bench-quick:
	BENCH_COMMAND="make bench-quick" bench/run.sh quick

bench-setup:
	bench/run.sh setup

# The admin dashboard's queries at a million usage records, SQLite and PostgreSQL.
bench-admin:
	.venv/bin/python -m bench.admin --records 1000000 --store both
