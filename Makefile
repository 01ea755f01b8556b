# Benchmarks (see docs/benchmarks.md and bench/run.sh).
.PHONY: bench bench-quick bench-setup bench-admin bench-clients bench-workers chaos soak

bench:
	BENCH_COMMAND="make bench" bench/run.sh full

bench-quick:
	BENCH_COMMAND="make bench-quick" bench/run.sh quick

bench-setup:
	bench/run.sh setup

# The reference relay with each upstream client (aiohttp's session and its lean path, httpx,
# pyreqwest, rnet, httpr): the "Upstream clients" section of docs/benchmarks.md.
bench-clients:
	.venv/bin/python -m bench.upstream_clients --command "make bench-clients"

# The full pipeline and the reference relay on 1 and 2 workers, wrk and nginx on core 0 (about
# 3 minutes): the "Workers" section of docs/benchmarks.md, printed, not written.
bench-workers:
	.venv/bin/python -m bench.workers_scale --rounds 3 --seconds 8

# The admin dashboard's queries at a million usage records, SQLite and PostgreSQL.
bench-admin:
	.venv/bin/python -m bench.admin --records 1000000 --store both

# Three replicas behind nginx on PostgreSQL and Redis, under a minute of load while a replica
# is killed, another restarted, Redis and PostgreSQL restarted (docs/deploy.md).
chaos:
	.venv/bin/python -m bench.chaos --seconds 60

# The same topology at a steady load for SOAK_SECONDS (default an hour): each replica's RSS
# and open files every minute, in bench/results/soak.csv and docs/soak.png.
SOAK_SECONDS ?= 3600
soak:
	.venv/bin/python -m bench.soak --seconds $(SOAK_SECONDS)
