"""Many concurrent streams through this tree's gateway and an older one's, side by side.

    .venv/bin/python -m bench.stream_ab --base REV [--rounds 8] [--streams 1000] [--words 40]

Starts ``modelway mock`` (a word every 50 ms), the reference relay, and two ``modelway
serve --workers 1`` in open mode in front of it: one running the code of ``REV`` (checked
out into a temporary git worktree, put first on its ``PYTHONPATH``), one this tree's.
Each round, every target gets ``--streams`` streams started at once, the order flipped
round by round. Prints each round and then each target's medians: time to first token,
the worst held-back chunk (its longest gap past the nominal 50 ms), and the server's CPU
per chunk passed on (all its processes, per-stream work included). What this measured
for issue 20: docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.processes import run_directory
from bench.servers import REFERENCE_RELAY, REPO_ROOT, mock_server, modelway_server, relay_server
from bench.stream_load import measure_streams

MODEL = "openai/echo"


@contextmanager
def checked_out(revision: str) -> Iterator[Path]:
    """``revision`` of this repository in a temporary worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="modelway-stream-ab-") as directory:
        tree = Path(directory) / "tree"
        git = ["git", "-C", str(REPO_ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", required=True, help="the revision to compare with (a commit)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--streams", type=int, default=1000, help="started at once, a round")
    parser.add_argument("--words", type=int, default=40, help="words a stream answers")
    args = parser.parse_args()
    with run_directory("modelway-stream-ab-") as run:
        run_dir = run.path
        (run_dir / "logs").mkdir()
        chunks_a_stream = args.words + 3  # the role, the words, the end, [DONE]
        figures: dict[str, list[tuple[float, float, float]]] = {}
        with ExitStack() as stack:
            base = stack.enter_context(checked_out(args.base))
            mock = stack.enter_context(mock_server(run_dir, 20.0))
            upstream = {"OPENAI_BASE_URL": f"{mock.url}/v1", "OPENAI_API_KEY": "x"}
            # Each gateway creates its store as it starts: the older one at its own migrations.
            older = {**upstream, "PYTHONPATH": str(base / "src")}
            relay = relay_server(run_dir, REFERENCE_RELAY, upstream["OPENAI_BASE_URL"])
            targets = [
                ("relay", stack.enter_context(relay)),
                ("base", stack.enter_context(modelway_server(run_dir, "base", older))),
                ("this", stack.enter_context(modelway_server(run_dir, "this", upstream))),
            ]
            for _, server in targets:  # first requests' costs (imports, pools) out of the rounds
                measure_streams(f"{server.url}/v1/chat/completions", MODEL, 10, words=3)
            for round_ in range(args.rounds):
                for name, server in targets if round_ % 2 == 0 else targets[::-1]:
                    summary = measure_streams(
                        f"{server.url}/v1/chat/completions",
                        MODEL,
                        args.streams,
                        words=args.words,
                        pid=server.pid,
                    )
                    if summary["errors"]:
                        raise SystemExit(
                            f"{name}: {summary['errors']} streams failed: {summary['first_error']}"
                        )
                    chunks = summary["streams"] * chunks_a_stream
                    cpu = summary["server_cpu_seconds"] / chunks * 1e6
                    row = (summary["ttft_p50_ms"], summary["extra_max_ms"], cpu)
                    figures.setdefault(name, []).append(row)
                    print(
                        f"round {round_ + 1} {name:>5}: TTFT {row[0]:7.1f} ms, worst held-back "
                        f"chunk {row[1]:7.1f} ms, {cpu:5.1f} µs CPU a chunk",
                        flush=True,
                    )
        print(f"medians of {args.rounds} rounds of {args.streams} streams ({args.base} as base):")
        for name, rows in figures.items():
            ttft, worst, cpu = (statistics.median(row[i] for row in rows) for i in range(3))
            print(
                f"  {name:>5}: TTFT {ttft:7.1f} ms, worst held-back chunk {worst:7.1f} ms, "
                f"{cpu:5.1f} µs CPU a chunk"
            )


if __name__ == "__main__":
    main()
