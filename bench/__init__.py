"""modelway's benchmark suite: the gateway side by side with direct, a reference relay and LiteLLM.

``bench/run.sh`` installs what the suite needs and runs ``python -m bench.suite``.
"""
