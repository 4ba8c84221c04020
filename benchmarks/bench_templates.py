"""Chat templates read back as ``/get_reward`` reads them without labels: per template family, how many rendered
prompts are recovered exactly, refused, or read wrong (must be 0); and the reader's time per MB on adversarial
bodies of 100 KB and 3.4 MB (a ratio near 1 is linear time).

    python benchmarks/bench_templates.py [TEMPLATE_DIR ...]   # default: tests/chat_templates

Each ``*.jinja`` in the directories renders the ten conversations of tests/chat_template_support.py with
transformers' ``render_jinja_template``
(``add_generation_prompt``; once more with ``enable_thinking=False`` when that changes the prompt), followed by a
response and the template's stop token; the special tokens come from the file name (``TOKENS``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from chat_template_support import CONVERSATIONS, TEMPLATES, generated, messages_of, render  # noqa: E402

from flip_reward.serving.protocol import DEFAULT_READER, openrlhf_item  # noqa: E402
from flip_reward.templates import TemplateError  # noqa: E402
from flip_reward.templates.families import DEEPSEEK_BOS, DEEPSEEK_EOS  # noqa: E402

NO_THINKING = {"enable_thinking": False}
# (substring of the lower-cased file name, bos_token, the token a generation ends with), first match wins
TOKENS = (
    ("deepseek", DEEPSEEK_BOS, DEEPSEEK_EOS),
    ("gemma", "<bos>", "<end_of_turn>"),
    ("mistral", "<s>", "</s>"),
    ("devstral", "<s>", "</s>"),
    ("phi-4", "", "<|im_end|>"),
    ("phi4", "", "<|im_end|>"),
    ("phi", "<s>", "<|end|>"),
    ("granite", "", "<|end_of_text|>"),
    ("glm", "", "<|user|>"),
    ("gpt-oss", "", "<|return|>"),
    ("gptoss", "", "<|return|>"),
    ("harmony", "", "<|return|>"),
    ("kimi", "", "<|im_end|>"),
    ("lfm", "<|startoftext|>", "<|im_end|>"),
    ("olmo2", "<|endoftext|>", "<|endoftext|>"),
    ("tulu", "", "<|end_of_text|>"),
    ("llama-3", "<|begin_of_text|>", "<|eot_id|>"),
    ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    ("hermes", "<|begin_of_text|>", "<|eot_id|>"),
    ("functionary", "<|begin_of_text|>", "<|eot_id|>"),
)
DEFAULT_TOKENS = ("", "<|im_end|>")


def tokens_for(name: str) -> tuple[str, str]:
    lowered = name.lower()
    return next(((bos, stop) for key, bos, stop in TOKENS if key in lowered), DEFAULT_TOKENS)


def render_or_none(source: str, messages: list[dict], bos: str, stop: str, **switches: object) -> str | None:
    try:
        return render(source, messages, bos, stop, **switches)
    except Exception:  # a template that refuses a conversation (no system role, ...) renders nothing for it
        return None


def outcomes(path: Path) -> tuple[Counter, list[str], str]:
    """The counts of one template's rendered items, its wrong readings, and the family that read its items."""
    source = path.read_text(encoding="utf-8")
    bos, stop = tokens_for(path.name)
    counts, wrong, families = Counter(), [], Counter()
    for label in CONVERSATIONS:
        messages = messages_of(label)
        prompts = {render_or_none(source, messages, bos, stop, **switches) for switches in ({}, NO_THINKING)}
        for prompt in prompts - {None}:
            text, expected = generated(prompt)
            item = openrlhf_item(0, prompt + text + stop, prompt, None)
            counts["rendered"] += 1
            families.update([_family(prompt)])
            if item.error is not None:
                counts["refused"] += 1
            elif item.prompt == messages and item.response == expected:
                counts["exact"] += 1
            elif item.prompt[-1] == messages[-1] and item.response == expected and item.prompt[1:] == messages:
                counts["default system"] += 1  # the template's own system prompt, read as context
            else:
                counts["wrong"] += 1
                wrong.append(f"{path.name} {label}: read {item.prompt!r} / {item.response!r}")
    read_by = [family for family, _ in families.most_common() if family != "none"]
    return counts, wrong, read_by[0] if read_by else "none"


def _family(prompt: str) -> str:
    try:
        return DEFAULT_READER.read(prompt).group
    except TemplateError:
        return "none"


def templates_table(directories: list[Path]) -> int:
    print(f"{'template':58} {'rendered':>8} {'exact':>6} {'default system':>14} {'refused':>7} {'wrong':>5}")
    totals, mistakes, by_family = Counter(), [], {}
    for path in sorted(p for directory in directories for p in directory.glob("*.jinja")):
        counts, wrong, family = outcomes(path)
        totals.update(counts)
        by_family.setdefault(family, Counter()).update(counts)
        mistakes += wrong
        print(_row(path.name, counts))
    print(_row("total", totals))
    print(f"\n{'family (that read the template)':58}")
    for family, counts in sorted(by_family.items()):
        print(_row(family, counts))
    for line in mistakes[:20]:
        print("WRONG", line)
    return totals["wrong"]


def _row(name: str, counts: Counter) -> str:
    rendered, exact, default, refused, wrong = (counts[key] for key in COLUMNS)
    return f"{name:58} {rendered:8} {exact:6} {default:14} {refused:7} {wrong:5}"


COLUMNS = ("rendered", "exact", "default system", "refused", "wrong")
ADVERSARIAL = {
    "unclosed ChatML headers": ("<|im_start|>user\n", "<|im_start|>assistant\n"),
    "unclosed Llama 3 headers": ("<|start_header_id|>user<|end_header_id|>\n\n", ""),
    "ChatML footers, no header": ("<|im_start|>user\nx<|im_end|>\n", "<|im_start|>assistant\n"),
    "complete ChatML turns": ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n", ""),
}


def timing(repeats: int = 5) -> None:
    print(f"\n{'adversarial body':28} {'100 KB s/MB':>12} {'3.4 MB s/MB':>12} {'ratio':>6}")
    for label, (unit, tail) in ADVERSARIAL.items():
        per_mb = []
        for size in (100_000, 3_400_000):
            prompt = unit * (size // len(unit)) + tail
            if not tail:
                prompt += "<|im_start|>user\nlast<|im_end|>\n<|im_start|>assistant\n"
            best = min(_seconds(prompt) for _ in range(repeats))
            per_mb.append(best / (len(prompt.encode()) / 1e6))
        print(f"{label:28} {per_mb[0]:12.4f} {per_mb[1]:12.4f} {per_mb[1] / per_mb[0]:6.2f}")


def _seconds(prompt: str) -> float:
    started = time.perf_counter()
    openrlhf_item(0, prompt + "x", prompt, None)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="*", type=Path, default=[TEMPLATES])
    parser.add_argument("--no-timing", action="store_true", help="skip the adversarial timing")
    args = parser.parse_args()
    wrong = templates_table(args.directories)
    if not args.no_timing:
        timing()
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
