"""The restatement guard: what the judge is shown of a response once its copies of the instruction are removed.

A FLIP judge that can read the instruction in the response copies it back (F1 = 1 whatever the content), so
``mask_restatements`` removes every span that restates the instruction, exactly or approximately, before the judge
sees the response.

Tokens (``restatement_text`` reads them, and splits request from material). Both texts are split into chunks on
whitespace and on the escapes of JSON and C strings (``\\n``, ``\\"``, ``\\t``..., which glue words together inside
a JSON string); a chunk's token is its NFKC, lowercase form without Unicode format characters (zero-width space and
joiners, soft hyphen, bidi marks: category Cf), with the Cyrillic and Greek letters drawn like Latin ones read as
those (``_LOOKALIKES``), and without ASCII and common Unicode punctuation; chunks that leave nothing or an article
(a/an/the) carry no token. So case, punctuation, markdown (``**``, ``#``, ``>``, backticks), comment markers (``#``,
``//``), quotes, line breaks, fullwidth or styled letters and look-alike letters do not hide a copy. The response is
read with the instruction's words in mind: a chunk that joins words with hyphens, underscores, dots or format
characters (``Write-a-poem``, ``write_a_poem``, ``Write\\u200ba\\u200bpoem``) gives its pieces as tokens when two or
more of them are instruction words and the whole is not one (``e-mail`` and ``state-of-the-art`` stay one token
unless the instruction has their words), and a run of single letters (``W r i t e``, ``W.r.i.t.e``) gives the
instruction words it spells, longest first.

Request and material. An instruction often supplies material for the answer to transform (the paragraph to correct,
the text to summarise or complete, a quoted sentence, a list to sort, code to fix), and an honest answer reproduces
much of it. So the instruction is split (``request_flags``): its material is what follows its first paragraph break
or its first clause-ending colon (each only after MIN_REQUEST tokens of request), and any quoted, backticked or
fenced passage of MIN_QUOTED tokens or more, and what follows the first sentence when that sentence names the
material (``this sentence``, ``the following text``, ``these words``, ``the list below``, ``in lowercase``...; see
``_NAMED_MATERIAL``), or what follows the name when the sentence runs on into the material without a period ("Add
punctuation to this sentence where are you going"); the rest is its request. Only the request is guarded: a copy
counts by how much of the request it covers. The material goes only with a copy of the whole instruction: a copy
that covers WHOLE of the request, or runs from the request straight into the material (two consecutive instruction
tokens across the seam copied as two consecutive tokens).

Matching: seeded local alignment. Every response token that occurs in the instruction is a seed; a seed is aligned
when it links to a seed at most GAP tokens away that follows it in the instruction within REACH tokens, so filler
words interleaved, a word changed or dropped, and markup or escapes in between do not break a copy, while a clause
in another order links within itself. A copy is a maximal-scoring segment of aligned seeds (+1 for each that covers
a request token not yet covered, as often as the request has it; -PENALTY for every other token): the scored, gapped
local alignment of read aligners and plagiarism detectors, seeded by exact token hits and extended only along them.
A copy ends WINDOW seeds past its best score (the X-drop of seeded aligners, by count); a token covered once too
often after that best starts the next copy from the tokens before it that precede it in the instruction (where a
second copy starts), at most WINDOW seeds back. So every scan starts at most WINDOW seeds before the previous one
ended and runs at most WINDOW past its best: the cost is a set lookup per response token and a bounded number of
steps per seed, linear in the response length for any input (benchmarks/README.md times adversarial ones: every word
doubled, overlapping trigrams, a stuttering copy, thousands of copies on one line). Alignment, not per-clause n-gram
coverage, because it finds the span to remove, and it needs no clause splitting to accept a copy's clauses in any
order.

When a copy is a restatement. With m request tokens, a copy is one when it covers PARTIAL of them and is set off
from its prose: it fills its lines (besides a label and markup, and one stray word where the copy misses one token
of a request of MIN_RUN or more: a changed word) in a response that holds something else, or follows a label or
markup, or is wrapped in quotes, bold or backticks, or is a whole copy opening the response. Inside prose only an
exact run counts, as in the first version of the guard: ``min(m, max(MIN_RUN, ceil(MIN_COVERAGE * m)))``
consecutive request tokens (m > SHORT_TOKENS), that is a whole copy (WHOLE of the request) or ends its sentence.
The reason: honest answers restate their task in prose all the time ("Canberra is the capital of Australia", the
facts of a word problem while solving it), in their own order and with their own words in between; a copy set off
on a line of its own, or an exact one, is what a restatement looks like.

Removal. A restated span is removed from its first to its last aligned token with its whole first and last chunks
(glued quotes, ``**``, trailing punctuation), its whole lines when it fills them (stray word included), the rest of
its line when only markup or punctuation is left there, a label just before it (``Task:``, ``Instruction:``, ``You
asked:``, ``You asked me to``..., see ``_LABEL``), and its line when the line is left blank. Fenced code blocks
emptied by the removal are dropped too.

What a policy can still exploit. The material copied without the request (the judge then infers that part of the
instruction; an honest answer carries it too, so that is FLIP's own limit); a request clause that the split takes
for material (what follows a colon, a quoted phrase), copied alone; a copy diluted past the alignment (more than two
filler tokens per instruction word on average, or more than GAP in a row) or paraphrased with other words; a partial
copy inside a sentence, or an exact one under MIN_RUN tokens that does not end its sentence; any copy of an
instruction of SHORT_TOKENS tokens or fewer inside a sentence; a response that is nothing but a partial copy; the
words of a request of 1 token; words run together without any separator (``Writeapoem``), spelled out with other
separators than spaces, dots, dashes and underscores, or in look-alike letters of other scripts than Cyrillic and
Greek (or not in ``_LOOKALIKES``). The named-material rule can be exploited through an instruction whose first
sentence names a text it does not supply, or goes on after the name ("Summarize the text below in two sentences.
Focus on the causes."): what follows is taken for material, so a copy of that part alone stays. The cost on honest
answers: an echo of most of the request on a line of its own ("A limerick about a cat:") is removed, and an answer
that is little more than such an echo loses most of itself.

Figures (``python benchmarks/bench_restatement.py``, 2 cores, with the first version side by side; see
benchmarks/README.md): on 2,000 real answers of 20 models restated in the 36 forms of tests/restatement_corpus.py,
99.6 % caught (first version 74.2 %), at least 95.1 % in every form (words spelled out letter by letter; the first
version caught 0 % with filler words, joined or spelled-out words and look-alike letters); 73 of the honest answers
altered (3.6 %; first version 94) and 1 losing over half its tokens (the same one as the first version); 42 us a
reward on short pairs (1.57x the first version), 0.7 us a token at 1k and 16k tokens, 1.5 to 1.7 us with
restatements to remove; on the adversarial inputs 6 to 13 us a token (every token a seed), the same at 1x and 4x
their size (up to 64k tokens).

Thresholds: PARTIAL = 0.55 catches a copy of 60 % of an instruction's words (articles carry no token); PENALTY = 1/3
lets a copy carry two filler tokens for each instruction word ("like", "you know") and still score (99 % caught
against 94 % at 1/2, honest answers as with 1/2), since honest answers that restate their task in prose are kept
by the rule that a copy inside prose must be exact, not by the penalty.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from functools import lru_cache

from flip_reward.core.restatement_text import PUNCTUATION, Token, request_flags, tokens_of

MIN_RUN = 8  # consecutive request tokens that make a restatement inside prose, whatever the request's length
MIN_COVERAGE = 0.4  # ... or this fraction of a long request, whichever is more
PARTIAL = 0.55  # a copy set off from its prose that covers this fraction of the request is a restatement
GAP = 3  # other response tokens allowed between two linked seeds (filler words, a changed word)
RESCANS = 8  # steps per aligned token that rescans from a second copy's start may take in all (then: after its best)
WINDOW = 16  # aligned tokens a copy runs past its best score, and a second copy may start before its first repeat
REACH = 3  # how far apart in the instruction two linked seeds may be (a dropped or changed word)
PENALTY = 1 / 3  # score of a response token that is not an aligned seed
WHOLE = 0.9  # a copy of this fraction of the request is a whole copy: removed with the material it carries
MAX_STRAY = 1  # words besides the copy on a line that the copy still fills (a changed word)
SHORT_TOKENS = 3  # a copy of a request this short is a restatement only where it is set off
LABEL_REACH = 80  # characters before a restatement searched for its label

_NONSPACE = re.compile(r"\S")
_LINE_BREAK = re.compile(r"\n")
_MARKUP_ONLY = re.compile(rf"[\s{re.escape(PUNCTUATION)}]*")
_LABEL = re.compile(
    r"(?:^|(?<=\s))[*_#>\s-]*(?:(?:task|instructions?|prompt|request|question|query|user|q|your (?:task|request|"
    r"question|instructions?|prompt)|you asked|you said|you wrote)[*_ ]*[:\uff1a][*_]*|you asked(?: me)? to|"
    r"you want(?:ed)? me to|you asked for)[\s*_`\"'\u201c\u2018\u00ab]*$",
    re.IGNORECASE,
)
_WRAPPED = re.compile(r"([\"'\u201c\u2018\u00ab`*_]).*[\"'\u201d\u2019\u00bb`*_][.,;:!?]*", re.DOTALL)
_EMPTY_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n[ \t]*\1[ \t]*(?:\n|$)", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def aligned_seeds(response: list[str], instruction: list[str]) -> list[int]:
    """Indices of the response tokens that occur in the instruction and link to a neighbouring such token that
    follows them there (within GAP response tokens and REACH instruction tokens), in order."""
    vocabulary = set(instruction)
    seeds = [index for index, token in enumerate(response) if token in vocabulary]
    if len(seeds) < 2:
        return []
    pairs = {
        (instruction[a], instruction[b])
        for a in range(len(instruction))
        for b in range(a + 1, a + 1 + REACH)
        if b < len(instruction)
    }
    linked = [False] * len(seeds)
    for k, index in enumerate(seeds):
        j = k - 1
        while j >= 0 and index - seeds[j] <= GAP + 1:
            if (response[seeds[j]], response[index]) in pairs:
                linked[j] = linked[k] = True
            j -= 1
    return [index for index, link in zip(seeds, linked) if link]


def segments(
    aligned: list[int], response: list[str], wanted: Counter[str], places: dict[str, list[int]]
) -> list[list[int]]:
    """The copies among the ``aligned`` response tokens: maximal-scoring segments, +1 for each aligned token that
    covers a token of ``wanted`` not yet covered as often as ``wanted`` has it, PENALTY off for every other token.
    A copy ends WINDOW aligned tokens after its best score (or where the score falls below 0); the first token it
    covers once too often may start a second copy: the next segment starts at the tokens just before it that come
    before it in the instruction (``places``: where each token is there; at most WINDOW tokens back), or after the
    copy's end. Once the scans have taken RESCANS steps per aligned token, only a token covered once too often after
    the copy's best starts the next one: each scan then starts at most WINDOW tokens before the last one ended and
    runs at most WINDOW past its best, a bounded number of steps per aligned token whatever the input."""
    found = []
    first = 0
    budget = RESCANS * len(aligned)  # steps left for rescanning from a repeat before the copy's best
    while first < len(aligned):
        used: Counter[str] = Counter()
        members: list[int] = []  # places in ``aligned``
        score = best = 0.0
        kept = 0
        last = first
        early = late = None  # (place, members before it) of the first token seen once too often, and after ``last``
        index = first
        while index < len(aligned) and score >= 0 and index - last <= WINDOW:
            token = response[aligned[index]]
            if index > first:
                score -= PENALTY * (aligned[index] - aligned[index - 1] - 1)
            if used[token] < wanted[token]:
                used[token] += 1
                members.append(index)
                score += 1
                if score >= best:
                    best, kept, last, late = score, len(members), index, None
            else:
                score -= PENALTY
                early = early or (index, len(members))
                late = late or (index, len(members))
            index += 1
        found.append([aligned[place] for place in members[:kept]])
        budget -= index - first
        repeat = early if budget > 0 else late
        restart = last + 1 if repeat is None else min(last + 1, copy_start(members, aligned, response, places, *repeat))
        first = max(first + 1, restart)
    return [segment for segment in found if len(segment) >= 2]


def copy_start(
    members: list[int], aligned: list[int], response: list[str], places: dict[str, list[int]], at: int, before: int
) -> int:
    """Where a copy through ``aligned[at]`` (a token seen once too often) may begin: the earliest of the ``before``
    first ``members`` that come before it, and after each other, in the instruction (``places``: where each token
    is), no more than WINDOW places back."""
    bound, start = places[response[aligned[at]]][-1], at
    for place in reversed(members[max(0, before - WINDOW) : before]):
        spots = places[response[aligned[place]]]
        earlier = bisect_left(spots, bound)
        if earlier == 0 or place < at - WINDOW:
            break
        bound, start = spots[earlier - 1], place
    return start


def covered(segment: list[int], response: list[str], request: Counter[str]) -> int:
    """How many request tokens the aligned tokens of ``segment`` cover, each at most as often as the request has it."""
    used = Counter(response[index] for index in segment)
    return sum(min(count, request[token]) for token, count in used.items() if token in request)


def span_to_remove(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of a restatement at ``text[start:end]`` widened over the label and markup glued to it."""
    line_start, line_end = line_of(text, start, end)
    if _MARKUP_ONLY.fullmatch(text, end, line_end):
        end = line_end
    if _MARKUP_ONLY.fullmatch(text, line_start, start):
        start = line_start
    elif label := _LABEL.search(text, max(line_start, start - LABEL_REACH), start):
        start = label.start()
    if start == line_start and end == line_end:  # the line held nothing else: remove it with its line break
        end = min(line_end + 1, len(text))
    return start, end


def line_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the lines of ``text`` that ``text[start:end]`` lies on, without the last line break."""
    breaks = line_breaks(text)
    before, after = bisect_left(breaks, start), bisect_left(breaks, end)
    return breaks[before - 1] + 1 if before else 0, breaks[after] if after < len(breaks) else len(text)


@lru_cache(maxsize=2)
def line_breaks(text: str) -> list[int]:
    """Where ``text``'s line breaks are, kept for the response being masked: each line lookup is a bisection, not a
    scan of a line that may be the whole response."""
    return [br.start() for br in _LINE_BREAK.finditer(text)]


def stray_words(text: str, starts: list[int], start: int, end: int) -> int:
    """How many tokens (``starts``: where each token of ``text`` starts) the lines of the restatement at
    ``text[start:end]`` hold besides it, its label and markup."""
    line_start, line_end = line_of(text, start, end)
    wide_start = span_to_remove(text, start, end)[0]
    before = bisect_left(starts, wide_start) - bisect_left(starts, line_start)
    return before + bisect_left(starts, line_end) - bisect_left(starts, end)


def fills_its_lines(text: str, starts: list[int], start: int, end: int, strays: int) -> bool:
    """Whether ``text[start:end]`` fills its lines but for ``strays`` words while ``text`` holds more than them."""
    line_start, line_end = line_of(text, start, end)
    if stray_words(text, starts, start, end) > strays:
        return False
    return bool(_NONSPACE.search(text, 0, line_start) or _NONSPACE.search(text, line_end))


def marked(text: str, start: int, end: int, whole: bool) -> bool:
    """Whether ``text[start:end]`` follows a label or markup, is wrapped in quotes, bold or backticks, or opens the
    response when it is a ``whole`` copy."""
    wide_start = span_to_remove(text, start, end)[0]
    if whole and not _NONSPACE.search(text, 0, wide_start):
        return True
    return wide_start < start or bool(_WRAPPED.fullmatch(text, start, end))


def ends_sentence(text: str, end: int) -> bool:
    """Whether the chunk ending at ``end`` ends a sentence or its line."""
    return text[end - 1] in ".?!:;" or not _NONSPACE.search(text, end, line_of(text, end, end)[1])


def longest_run(segment: list[int], response: list[str], adjacent: set[tuple[str, str]]) -> int:
    """The most consecutive response tokens of ``segment`` that are consecutive in the instruction too."""
    longest = run = 1
    for before, after in zip(segment, segment[1:]):
        run = run + 1 if after == before + 1 and (response[before], response[after]) in adjacent else 1
        longest = max(longest, run)
    return longest


def restated_spans(response: str, found: list[Token], instruction: str, wanted: list[Token]) -> list[tuple[int, int]]:
    """Character spans of ``response``'s restatements of ``instruction``, label and markup included, in order;
    ``found`` and ``wanted`` are the tokens of each (the response's read with the instruction's vocabulary)."""
    words = [token for token, _, _ in wanted]
    flags = request_flags(instruction, wanted)
    request = Counter(token for token, flag in zip(words, flags) if flag)
    tokens = [token for token, _, _ in found]
    starts = [start for _, start, _ in found]
    aligned = aligned_seeds(tokens, words)
    if not aligned:
        return []
    adjacent = set(zip(words, words[1:]))
    places: dict[str, list[int]] = {}
    for place, token in enumerate(words):
        places.setdefault(token, []).append(place)
    spans: list[tuple[int, int]] = []

    def keep(segment: list[int], wanted: Counter[str]) -> bool:
        """Add the span of ``segment`` if it is a restatement reaching at least 2 tokens past the last one found (a
        segment sought again from inside a copy only re-finds it)."""
        if spans and sum(found[index][1] >= spans[-1][1] for index in segment) < 2:
            return False
        for lines in trimmed(response, found, segment):
            if span := restated_span(response, found, tokens, starts, lines, wanted, adjacent):
                spans.append(span)
                return True
        return False

    if all(flags):
        for segment in segments(aligned, tokens, request, places):
            keep(segment, request)
        return sorted(spans)
    whole = Counter(words)
    seams = {(a, b) for a, b, flag, after in zip(words, words[1:], flags, flags[1:]) if flag != after}
    length = sum(request.values())
    for segment in segments(aligned, tokens, whole, places):  # a copy of the whole instruction goes with its material
        carries = covered(segment, tokens, request) >= WHOLE * length or crosses(segment, tokens, seams)
        if not (carries and keep(segment, whole)):  # otherwise only its copies of the request count
            for part in segments([index for index in segment if tokens[index] in request], tokens, request, places):
                keep(part, request)
    return sorted(spans)


def crosses(segment: list[int], response: list[str], seams: set[tuple[str, str]]) -> bool:
    """Whether ``segment`` copies, as two consecutive tokens, two consecutive instruction tokens across the seam of
    its request and its material (a contiguous copy that runs from one into the other)."""
    return any(b == a + 1 and (response[a], response[b]) in seams for a, b in zip(segment, segment[1:]))


def trimmed(response: str, found: list[Token], segment: list[int]) -> list[list[int]]:
    """``segment``, then without its tokens on its last line, then on its first line: a copy that runs into the
    answer's first line (or out of its last) shares words with it, and fills its own lines without them."""
    first_line_end = line_of(response, found[segment[0]][2], found[segment[0]][2])[1]
    last_line_start = line_of(response, found[segment[-1]][1], found[segment[-1]][1])[0] - 1
    if first_line_end == len(response) or last_line_start < first_line_end:
        return [segment]
    return [
        segment,
        [index for index in segment if found[index][2] <= last_line_start],
        [index for index in segment if found[index][1] > first_line_end],
    ]


def restated_span(
    response: str,
    found: list[Token],
    tokens: list[str],
    starts: list[int],
    segment: list[int],
    wanted: Counter[str],
    adjacent: set[tuple[str, str]],
) -> tuple[int, int] | None:
    """The span to remove for the copy ``segment`` of the tokens ``wanted`` (the request, or the whole instruction),
    or None when it is not a restatement (see the module docstring)."""
    length = sum(wanted.values())
    cover = covered(segment, tokens, wanted)
    start, end = found[segment[0]][1], found[segment[-1]][2]
    if length < 2:
        return None
    if cover >= math.ceil(PARTIAL * length):
        strays = MAX_STRAY if length >= MIN_RUN and length - cover <= MAX_STRAY else 0  # a changed word
        if fills_its_lines(response, starts, start, end, strays):
            return span_to_remove(response, *line_of(response, span_to_remove(response, start, end)[0], end))
        if marked(response, start, end, cover == length):
            return span_to_remove(response, start, end)
    run = min(length, max(MIN_RUN, math.ceil(MIN_COVERAGE * length)))
    if length > SHORT_TOKENS and longest_run(segment, tokens, adjacent) >= run:
        if cover >= WHOLE * length or ends_sentence(response, end):
            return span_to_remove(response, start, end)
    return None


def mask_restatements(response: str, instruction: str) -> tuple[str, int]:
    """``response`` without its restatements of ``instruction``, and how many normalised tokens were removed;
    ``(response, 0)`` unchanged when it restates nothing.

    >>> mask_restatements("**Task:** Write a poem about the sea.\\n\\nWaves fold.", "Write a poem about the sea")
    ('Waves fold.', 5)
    >>> mask_restatements("Write, um, a poem, like, about the sea\\nWaves fold.", "Write a poem about the sea")
    ('Waves fold.', 6)
    >>> mask_restatements("Here is a poem about the sea: waves fold.", "Write a poem about the sea")
    ('Here is a poem about the sea: waves fold.', 0)
    """
    wanted = tokens_of(instruction)
    vocabulary = {token for token, _, _ in wanted}
    found = tokens_of(response, vocabulary)
    spans = restated_spans(response, found, instruction, wanted)
    if not spans:
        return response, 0
    kept, pos = [], 0
    for start, end in spans:
        kept.append(response[pos : max(pos, start)])
        pos = max(pos, end)
    kept.append(response[pos:])
    masked = _BLANK_LINES.sub("\n\n", _EMPTY_FENCE.sub("", "".join(kept))).strip()
    return masked, len(found) - len(tokens_of(masked, vocabulary))
