"""Peak memory of reading input: ``score`` on many rows, ``inspect`` on many samples, ``score`` on one huge line.

Run ``python benchmarks/bench_input_memory.py [--before REF] [--rows N] [--samples N] [--line-mb N]``. Each command
runs as a real ``flip-reward`` process twice, side by side in this one run: with the package of git ref ``--before``
(default: the last commit before streaming input, ``git archive``d into a temporary directory) and with this
checkout's; the peak resident set of each process (``wait4``'s ``ru_maxrss``) is printed with the ratio before/after.

- ``score``: N rows of a .jsonl file, judged by a dead judge (a closed loopback port, ``--retries 0``): the breaker
  opens at once and every row passes through reading, checking, scoring and writing in seconds, so what is measured
  is what the command holds per row, not a judge's time.
- ``inspect``: a samples.jsonl of N samples over 100 steps (the texts of a few prompts, so language identification
  is cheap), with inspect.json and inspect.png written.
- ``score`` on one line of ``--line-mb`` MB: before, the row is read and scored; after, the default
  ``--max-line-bytes`` (16 MiB) refuses it as an invalid row without reading it whole.

Nothing is asserted; the exit code does not depend on the figures (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE = "0b0cafb"  # the last commit before the input was streamed and lines were bounded
PROMPTS = [
    "Write a short poem about the sea and the wind at night.",
    "Explain how a hash map handles collisions, with an example.",
    "Summarize the plot of a detective story in three sentences.",
]
ANSWER = "The waves roll in under a silver moon while the wind sings softly over the water. " * 3


def dead_port() -> socket.socket:
    """A loopback port bound and never listened on, so that every connection to it is refused for as long as the
    socket is open (a closed one could be taken by another process during the run)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def peak_rss_mb(tree: Path, args: list[str], cwd: Path) -> tuple[float, int]:
    """Peak RSS (MB) and exit status of ``flip-reward ARGS`` run with the package in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flip_reward.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, process.returncode


def write_score_rows(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for index in range(rows):
            prompt = f"{PROMPTS[index % len(PROMPTS)]} (variant {index})"
            out.write(json.dumps({"id": index, "prompt": prompt, "response": ANSWER}) + "\n")
    return path


def write_samples(path: Path, samples: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for index in range(samples):
            row = {
                "step": index * 100 // samples,
                "prompt": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
                "response": ANSWER,
                "response_chars": len(ANSWER) - index % 7,
                "inferred_instruction": "Write a poem about the sea",
                "reward": (index % 10) / 10,
                "error_type": None,
                "error": None,
                "restatement_masked": index % 3,
            }
            out.write(json.dumps(row) + "\n")
    return path


def write_huge_line(path: Path, megabytes: int) -> Path:
    row = {"prompt": PROMPTS[0], "response": "word " * (megabytes * 1024 * 1024 // 5)}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


def checkout(ref: str, into: Path) -> Path:
    """The files of git ref ``ref`` under ``into`` (``git archive``: the repository itself is left alone)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="git ref of the baseline (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=200_000, help="rows scored (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=1_000_000, help="samples inspected (default: %(default)s)")
    parser.add_argument("--line-mb", type=int, default=60, help="MB of the one-line input (default: %(default)s)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        before = checkout(args.before, work / "before")
        port = stack.enter_context(dead_port()).getsockname()[1]
        judge = ["--judge", "hosted_vllm/judge", "--api-base", f"http://127.0.0.1:{port}/v1", "--retries", "0"]
        cases = [
            (
                f"score, {args.rows:,} rows",
                lambda: write_score_rows(work / "rows.jsonl", args.rows),
                lambda source: ["score", str(source), "-o", str(work / "scored.jsonl"), *judge],
            ),
            (
                f"inspect, {args.samples:,} samples",
                lambda: write_samples(work / "samples.jsonl", args.samples),
                lambda source: ["inspect", str(source), "--output-dir", str(work / "inspect")],
            ),
            (
                f"score, one {args.line_mb} MB line",
                lambda: write_huge_line(work / "huge.jsonl", args.line_mb),
                lambda source: ["score", str(source), "-o", str(work / "huge_scored.jsonl"), *judge],
            ),
        ]
        print(f"{'case':<28} {'before MB':>10} {'after MB':>10} {'before/after':>13}  exit before/after")
        for name, make, command in cases:
            source = make()
            old, old_code = peak_rss_mb(before, command(source), work)
            new, new_code = peak_rss_mb(REPO, command(source), work)
            print(f"{name:<28} {old:>10.0f} {new:>10.0f} {old / new:>12.2f}x  {old_code}/{new_code}")
            source.unlink()


if __name__ == "__main__":
    main()
