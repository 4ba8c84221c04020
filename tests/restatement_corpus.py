"""The restatement corpus, written for this project: the forms in which a response can restate its instruction,
responses restated in each (with the same response without the restatement), responses whose natural overlap with
the instruction must be left alone, echo lead-ins, and honest answers that reproduce material the instruction
supplies; and the measure of a caught restatement. Used by tests/test_restatement.py and
benchmarks/bench_restatement.py (which applies the same forms to real responses).
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from flip_reward.core.restatement import request_flags, tokens_of

SLACK = 0.1  # of the request's tokens that a caught restatement may leave beyond the clean response's overlap


def overlap(text: str, wanted: Counter[str]) -> int:
    """How many of the ``wanted`` tokens ``text`` holds (multiset; the guard's tokens: F1's normalisation, with
    string escapes splitting words, and words joined or spelled out read as the judge reads them)."""
    return sum((Counter(token for token, _, _ in tokens_of(text, set(wanted))) & wanted).values())


def request_tokens(instruction: str) -> Counter[str]:
    """The tokens of the instruction's request (the instruction without the material it supplies), as a multiset."""
    found = tokens_of(instruction)
    return Counter(token for (token, _, _), flag in zip(found, request_flags(instruction, found)) if flag)


def caught(masked: str, restated: str, clean: str, wanted: Counter[str]) -> bool | None:
    """Whether ``masked`` (the guard's output for ``restated``, which is ``clean`` with a restatement added) is back
    to ``clean``'s overlap with the ``wanted`` tokens, up to SLACK of them (at least 1); None when the restatement
    adds no more than that to begin with (``clean`` already holds the instruction's words: the pair tests nothing)."""
    slack = max(1, math.floor(SLACK * sum(wanted.values())))
    honest = overlap(clean, wanted)
    if overlap(restated, wanted) <= honest + slack:
        return None
    return overlap(masked, wanted) <= honest + slack


@dataclass(frozen=True)
class Restated:
    """``restated`` is ``clean`` (a response that does not restate ``instruction``) with a restatement added."""

    form: str
    instruction: str
    clean: str
    restated: str


# (instruction, a response without restatement); instructions from 2 to ~60 normalised tokens
BASES = [
    ("Write a haiku", "Autumn moon rises\nover the silent harbour\nnets dry in the wind"),
    (
        "Write a poem about the sea",
        "Here is a poem about the sea:\n\nWaves fold over the harbour wall,\nsalt on the wind.",
    ),
    ("What is the capital of France?", "The capital of France is Paris, on the Seine."),
    (
        "Explain the difference between TCP and UDP in two sentences.",
        "TCP is connection-oriented and guarantees ordered delivery.\nUDP sends datagrams with no such guarantee.",
    ),
    (
        "Write a Python function that takes a list of integers and returns the sum of all even numbers in the list.",
        "```python\ndef sum_even(values):\n    return sum(v for v in values if v % 2 == 0)\n```\n\n"
        "It skips odd values.",
    ),
    (
        "Give me three tips for improving my sleep, and keep each tip under twenty words.",
        "1. Keep a fixed bedtime.\n2. Avoid screens for an hour before bed.\n3. Keep your bedroom cool and dark.",
    ),
    (
        "Summarize the plot of Romeo and Juliet for a ten-year-old in no more than five sentences, without spoilers "
        "about the ending and using simple words.",
        "Two young people from feuding families fall in love.\nThey meet at a party and marry in secret.\n"
        "Their families' quarrel makes everything harder.",
    ),
    (
        "You are a travel agent. Plan a three-day itinerary for a first-time visitor to Kyoto who loves temples, "
        "gardens and street food, is on a moderate budget, and prefers walking or public transport over taxis. "
        "Include one rainy-day alternative for each day.",
        "Day 1: Fushimi Inari at dawn, then Nishiki Market for lunch.\nRainy day: the Kyoto National Museum.\n"
        "Day 2: Arashiyama bamboo grove and Tenryu-ji by train.\nRainy day: the Kyoto Railway Museum.\n"
        "Day 3: Kinkaku-ji and Ryoan-ji by bus, street food in Gion.\nRainy day: a tea ceremony class.",
    ),
    (
        "Translate 'good night, sleep well' into French.",
        "Bonne nuit, dors bien.",
    ),
    (
        "List the planets of the solar system in order from the sun.",
        "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune.",
    ),
]


FILLERS = ("um", "like", "uh", "you know", "so", "well", "basically", "I mean")


def _words(instruction: str) -> list[str]:
    return instruction.split()


def _split_lines(instruction: str) -> str:
    words = _words(instruction)
    third = max(1, len(words) // 3)
    return "\n".join([" ".join(words[:third]), " ".join(words[third : 2 * third]), " ".join(words[2 * third :])])


def _middle(clean: str, inserted: str) -> str:
    lines = clean.split("\n")
    cut = max(1, len(lines) // 2)
    return "\n".join(lines[:cut] + [inserted] + lines[cut:])


def _filler(instruction: str, every: int) -> str:
    """A filler word (rotating through FILLERS) after every ``every`` words: "Write, um, a poem, like, ..."."""
    words, out = _words(instruction), []
    for index, word in enumerate(words):
        out.append(word)
        if index % every == every - 1 and index < len(words) - 1:
            out[-1] += ","
            out.append(FILLERS[index % len(FILLERS)] + ",")
    return " ".join(out)


def _reordered(instruction: str) -> str:
    """The instruction's clauses (split after , ; : . ? ! and before and/but/or/then) in reverse order."""
    clauses = re.split(r"(?<=[,;:.?!])\s+|\s+(?=(?:and|but|or|then) )", instruction.strip())
    return " ".join(reversed([clause for clause in clauses if clause]))


def _changed(instruction: str) -> str:
    words = _words(instruction)
    middle = len(words) // 2
    return " ".join(words[:middle] + ["something"] + words[middle + 1 :])


def _dropped(instruction: str) -> str:
    words = _words(instruction)
    middle = len(words) // 2
    return " ".join(words[:middle] + words[middle + 1 :])


def _partial(instruction: str, share: float, from_end: bool = False) -> str:
    """The first (or last) ``share`` of the instruction's words."""
    words = _words(instruction)
    count = math.ceil(share * len(words))
    return " ".join(words[-count:] if from_end else words[:count])


def _prefixed(prefix: str, instruction: str) -> str:
    return "\n".join(prefix + line for line in instruction.split("\n"))


def _shouted(instruction: str) -> str:
    return re.sub(r"[^\w\s]", "", instruction).upper()


def _joined(instruction: str, joiner: str) -> str:
    """The instruction's words joined by ``joiner`` instead of spaces: "Write-a-poem-about-the-sea"."""
    return joiner.join(_words(instruction))


def _spelled_out(instruction: str, between: str) -> str:
    """Each word's letters joined by ``between``, the words by two spaces: "W.r.i.t.e  a  p.o.e.m"."""
    return "  ".join(between.join(word) for word in _words(instruction))


LOOKALIKES = str.maketrans("aeopcxyi", "\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456")  # Latin -> Cyrillic


# How a response restates its instruction i around the response r: exact copies, then approximate ones
FORMS: dict[str, Callable[[str, str], str]] = {
    "start": lambda i, r: f"{i}\n\n{r}",
    "end": lambda i, r: f"{r}\n\n{i}",
    "middle": lambda i, r: _middle(r, i),
    "same-line-start": lambda i, r: f"{i} {r}",
    "inline lead-in": lambda i, r: f"Sure! {i} Here you go: {r}",
    "quoted-label": lambda i, r: f'You asked: "{i}"\n\n{r}',
    "curly-quoted": lambda i, r: f"\u201c{i}\u201d\n{r}",
    "bold": lambda i, r: f"**{i}**\n\n{r}",
    "heading": lambda i, r: f"## {i}\n\n{r}",
    "heading-label": lambda i, r: f"## Task: {i}\n\n{r}",
    "blockquote": lambda i, r: f"{_prefixed('> ', i)}\n\n{r}",
    "code-fence": lambda i, r: f"```\n{i}\n```\n\n{r}",
    "code comment #": lambda i, r: f"```python\n{_prefixed('# ', i)}\n```\n\n{r}",
    "code comment //": lambda i, r: f"{_prefixed('// ', i)}\n{r}",
    "inline-code-mid": lambda i, r: f"Request `{i}` received.\n{r}",
    "JSON string": lambda i, r: json.dumps({"instruction": i, "response": r}, ensure_ascii=False),
    "repeated": lambda i, r: f"{i}\n{i}\n\n{r}\n\n{i}",
    "split-lines": lambda i, r: f"{_split_lines(i)}\n\n{r}",
    "line-wrapped": lambda i, r: f"{textwrap.fill(i, 36)}\n\n{r}",
    "upper-nopunct": lambda i, r: f"{_shouted(i)}\n{r}",
    "instruction-label": lambda i, r: f"Instruction: {i}\nResponse:\n{r}",
    "you-asked-me-to": lambda i, r: f"You asked me to {i[:1].lower() + i[1:]}\n\n{r}",
    "hyphen-joined": lambda i, r: f"{_joined(i, '-')}\n\n{r}",
    "underscore-joined": lambda i, r: f"{_joined(i, '_')}\n\n{r}",
    "zero-width spaces": lambda i, r: f"{_joined(i, chr(0x200B))}\n\n{r}",
    "dotted letters": lambda i, r: f"{_spelled_out(i, '.')}\n\n{r}",
    "spaced letters": lambda i, r: f"{_spelled_out(i, ' ')}\n\n{r}",
    "look-alike letters": lambda i, r: f"{i.translate(LOOKALIKES)}\n\n{r}",
    "filler every 2 words": lambda i, r: f"{_filler(i, 2)}\n\n{r}",
    "filler every word": lambda i, r: f"{_filler(i, 1)}\n\n{r}",
    "reordered clauses": lambda i, r: f"{_reordered(i)}\n\n{r}",
    "one word changed": lambda i, r: f"{_changed(i)}\n\n{r}",
    "one word dropped": lambda i, r: f"{_dropped(i)}\n\n{r}",
    "60% partial (start)": lambda i, r: f"{_partial(i, 0.6)}\n\n{r}",
    "60% partial (end)": lambda i, r: f"{_partial(i, 0.6, True)}\n\n{r}",
    "80% partial": lambda i, r: f"{_partial(i, 0.8)}\n\n{r}",
}
APPROXIMATE = frozenset(list(FORMS)[-8:])  # the forms that copy the instruction inexactly


def restated_cases() -> list[Restated]:
    """Every base restated in every form, then hand-written partial long copies."""
    cases = [Restated(form, i, r, make(i, r)) for i, r in BASES for form, make in FORMS.items()]
    return cases + PARTIAL


PARTIAL = [
    Restated(
        "partial-long-copy",
        BASES[4][0],
        BASES[4][1],
        "A Python function that takes a list of integers and returns the sum of all even numbers:\n\n" + BASES[4][1],
    ),
    Restated(
        "partial-long-copy",
        BASES[7][0],
        BASES[7][1],
        "A three-day itinerary for a first-time visitor to Kyoto who loves temples, gardens and street food, is on "
        "a moderate budget:\n" + BASES[7][1],
    ),
    Restated(
        "partial-long-copy",
        BASES[6][0],
        BASES[6][1],
        BASES[6][1] + "\n(the plot of Romeo and Juliet for a ten-year-old in no more than five sentences)",
    ),
    Restated(
        "partial-long-copy",
        BASES[5][0],
        BASES[5][1],
        "Three tips for improving my sleep, and keep each tip under twenty words\n" + BASES[5][1],
    ),
]

# (instruction, a response whose overlap with it is natural and must be left alone)
NATURAL = [
    ("What is the capital of France", "The capital of France is Paris."),
    ("Write a haiku", "Here is a haiku for you:\nAutumn moon rises\nover the silent harbour"),
    ("Write a haiku", "I'd love to write a haiku! Autumn moon rises over the harbour."),
    ("Write a haiku", "Sure, I will write a haiku about spring.\nCherry petals fall"),
    ("Write a poem about the sea", "Here is a poem about the sea:\nWaves fold over the harbour wall."),
    ("Write a poem about the sea", "A poem about the sea, in two lines:\nSalt wind, grey swell, the tide keeps time."),
    ("Write a poem about the sea", "Ode to the Sea\n\nO sea, you write your poem on the sand."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of France?", "Paris is the capital of France, and its largest city."),
    ("What is the capital of France?", "France's capital is Paris."),
    ("Explain quantum entanglement", "Sure, I can explain quantum entanglement with an analogy: two linked coins."),
    ("Explain quantum entanglement", "Quantum entanglement links the states of two particles."),
    (
        "Explain the difference between TCP and UDP in two sentences.",
        "The difference between TCP and UDP is reliability: TCP retransmits lost packets. UDP does not.",
    ),
    (
        "Explain the difference between TCP and UDP in two sentences.",
        "In two sentences: TCP guarantees ordered delivery. UDP is faster but offers no guarantee.",
    ),
    (
        "Write a Python function that takes a list of integers and returns the sum of all even numbers in the list.",
        "Here is a Python function that sums the even numbers of a list:\n\n```python\ndef sum_even(values):\n"
        "    return sum(v for v in values if v % 2 == 0)\n```",
    ),
    (
        "Write a Python function that takes a list of integers and returns the sum of all even numbers in the list.",
        "The function below returns the sum of all even numbers:\n```python\ndef f(xs):\n"
        "    return sum(x for x in xs if x % 2 == 0)\n```",
    ),
    (
        "Give me three tips for improving my sleep, and keep each tip under twenty words.",
        "Here are three tips for improving your sleep:\n1. Fixed bedtime.\n2. No screens late.\n3. A cool room.",
    ),
    (
        "Give me three tips for improving my sleep, and keep each tip under twenty words.",
        "Improving your sleep starts with routine. Tip one: a fixed bedtime. Tip two: no caffeine after noon.",
    ),
    (
        "Summarize the plot of Romeo and Juliet for a ten-year-old in no more than five sentences, without spoilers "
        "about the ending and using simple words.",
        "Romeo and Juliet is a story about two young people from families that hate each other.\n"
        "They fall in love and marry in secret.",
    ),
    (
        "Summarize the plot of Romeo and Juliet for a ten-year-old in no more than five sentences, without spoilers "
        "about the ending and using simple words.",
        "Here is the plot of Romeo and Juliet in simple words: two families fight, and their children fall in love.",
    ),
    (
        "You are a travel agent. Plan a three-day itinerary for a first-time visitor to Kyoto who loves temples, "
        "gardens and street food, is on a moderate budget, and prefers walking or public transport over taxis. "
        "Include one rainy-day alternative for each day.",
        "Here is a three-day itinerary for Kyoto, built around temples, gardens and street food.\n"
        "Day 1: Fushimi Inari. Rainy-day alternative: the National Museum.\nDay 2: Arashiyama by train.",
    ),
    (
        "You are a travel agent. Plan a three-day itinerary for a first-time visitor to Kyoto who loves temples, "
        "gardens and street food, is on a moderate budget, and prefers walking or public transport over taxis. "
        "Include one rainy-day alternative for each day.",
        "As your travel agent, I kept it to public transport and a moderate budget.\nDay 1: temples of Higashiyama.",
    ),
    (
        "Translate 'good night, sleep well' into French.",
        "'Good night, sleep well' in French is 'Bonne nuit, dors bien'.",
    ),
    ("Translate 'good night, sleep well' into French.", "In French: Bonne nuit, dors bien."),
    (
        "List the planets of the solar system in order from the sun.",
        "In order from the sun, the planets are: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune.",
    ),
    (
        "List the planets of the solar system in order from the sun.",
        "The solar system has eight planets: Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune.",
    ),
    ("Write a limerick about a cat", "There once was a cat from Peru\nwho dreamed he was eating a shoe."),
    ("Name three primary colors.", "The three primary colors are red, yellow and blue."),
    ("Name three primary colors.", "Red, yellow, blue: those are the three primary colors of paint."),
    ("How do I boil an egg?", "To boil an egg, lower it into boiling water for nine minutes, then cool it."),
    ("How do I boil an egg?", "Boil the egg for nine minutes. That's how I boil an egg every morning."),
    (
        "Correct the grammar of this sentence: she go to school every days and dont like it.",
        "She goes to school every day and doesn't like it.",
    ),
    (
        "Fix the bug in this function: def add(x, y): return x - y",
        "The bug is the minus sign. Fixed:\n```python\ndef add(x, y):\n    return x + y\n```",
    ),
    (
        "Rewrite this sentence more formally: gonna grab some food, brb.",
        "I am going to get something to eat; I will return shortly.",
    ),
    (
        "What are the health benefits of drinking green tea every day?",
        "Drinking green tea every day may improve alertness and supply antioxidants.",
    ),
    (
        "What are the health benefits of drinking green tea every day?",
        "The main health benefits of green tea are antioxidants and a gentle dose of caffeine.",
    ),
    (
        "Describe the water cycle in three short steps for a school poster.",
        "For your school poster: water evaporates, forms clouds, and falls as rain.",
    ),
    (
        "Write a SQL query that returns the ten most recent orders from the orders table.",
        "```sql\nSELECT * FROM orders ORDER BY created_at DESC LIMIT 10;\n```\n"
        "This returns the ten most recent orders.",
    ),
    (
        "Write a SQL query that returns the ten most recent orders from the orders table.",
        "Here is a SQL query for the ten most recent orders:\nSELECT * FROM orders ORDER BY id DESC LIMIT 10;",
    ),
    (
        "Compare cats and dogs as pets for a small apartment.",
        "For a small apartment, cats usually adapt better than dogs: they need no walks.",
    ),
    (
        "Compare cats and dogs as pets for a small apartment.",
        "Cats and dogs both make good pets, but in a small apartment a cat is easier.",
    ),
    ("Tell me a joke about programmers.", "Why do programmers prefer dark mode? Because light attracts bugs."),
    ("Tell me a joke about programmers.", "Here's a joke about programmers: there are 10 kinds of people."),
    (
        "Give me a recipe for a vegan chocolate cake that does not need eggs or butter.",
        "This vegan chocolate cake needs no eggs or butter: mix flour, cocoa, sugar, oil and vinegar, then bake.",
    ),
    (
        "Give me a recipe for a vegan chocolate cake that does not need eggs or butter.",
        "Vegan Chocolate Cake\n\nIngredients: flour, cocoa, sugar, oil, vinegar, plant milk.\nBake 30 minutes.",
    ),
    ("Summarize the following: The meeting moved to Friday.", "The meeting is now on Friday."),
    (
        "Fix the bug in this function so that it returns the average of the positive values only:\n"
        "def mean_positive(values):\n    total = 0\n    count = 0\n    for value in values:\n"
        "        if value > 0:\n            total += value\n        count += 1\n    return total / count",
        "Only positive values should be counted:\n```python\ndef mean_positive(values):\n    total = 0\n"
        "    count = 0\n    for value in values:\n        if value > 0:\n            total += value\n"
        "            count += 1\n    return total / count if count else 0.0\n```",
    ),
    (
        "Summarize this article in one sentence: The city council voted on Tuesday to expand the bike lane network "
        "by forty kilometres over the next three years, funded by a new parking levy. Business owners on Main "
        "Street objected that the levy would drive shoppers away, while cycling groups welcomed the plan.",
        "The city council voted on Tuesday to expand the bike lane network with a parking levy, over business "
        "objections.",
    ),
    (
        "Explain why the sky is blue, in one paragraph.",
        "The sky is blue because air scatters short blue wavelengths of sunlight more than red ones.",
    ),
]

# (instruction, a response that opens with a line echoing most of its request, what the guard leaves): a partial
# copy set off on its own line, masked like any other (it removes the incentive to echo; the answer stays)
ECHOES = [
    (
        "Explain why the sky is blue",
        "# Why the sky is blue\n\nSunlight scatters off air molecules; blue scatters most.",
        "Sunlight scatters off air molecules; blue scatters most.",
    ),
    (
        "Write a haiku about autumn leaves falling",
        "## A haiku about autumn leaves falling\n\nRed leaves drift and fall\nwhispering to the cold ground",
        "Red leaves drift and fall\nwhispering to the cold ground",
    ),
    (
        "Name three benefits of regular exercise for older adults",
        "Three benefits of regular exercise for older adults:\n1. Stronger bones\n2. Better balance",
        "1. Stronger bones\n2. Better balance",
    ),
    (
        "Write a limerick about a cat",
        "A limerick about a cat:\nThere once was a cat named Lou.",
        "There once was a cat named Lou.",
    ),
    (
        "Describe the water cycle in three short steps for a school poster.",
        "The water cycle in three short steps:\n1. Evaporation\n2. Condensation\n3. Precipitation",
        "1. Evaporation\n2. Condensation\n3. Precipitation",
    ),
]

# (instruction with material for the answer to transform, an honest answer reproducing much of it): left alone.
# The material follows a paragraph break or colon, is quoted, or follows a first sentence that names it ("this
# sentence", "the following list", "in lowercase"), with or without its period; case, punctuation and spelling change.
TRANSFORMS = [
    (
        "Capitalize every word in the sentence the quick brown fox jumps over the lazy dog",
        "Here you go:\n\nThe Quick Brown Fox Jumps Over The Lazy Dog",
    ),
    ("Convert to uppercase hello world how are you today", "Sure!\nHELLO WORLD HOW ARE YOU TODAY"),
    (
        "Convert this text to uppercase: the train leaves at seven from platform two",
        "THE TRAIN LEAVES AT SEVEN FROM PLATFORM TWO",
    ),
    (
        "Put these words in alphabetical order dog cat banana apple elephant",
        "Sure! Here they are:\napple banana cat dog elephant",
    ),
    ("Remove the duplicates from this list 3 5 3 7 5 9 11 13", "Here is the list without duplicates:\n3 5 7 9 11 13"),
    (
        "Reverse the order of the words in this sentence I love eating fresh apples every morning",
        "Reversed:\nmorning every apples fresh eating love I",
    ),
    ("Reverse the order of these words: one two three four five six", "six five four three two one"),
    (
        "Add punctuation to this sentence where are you going tonight my friend",
        "Here it is with punctuation:\n\nWhere are you going tonight, my friend?",
    ),
    (
        "Add punctuation to the following sentence. where are you going tonight my friend",
        "Sure!\nWhere are you going tonight, my friend?",
    ),
    ("Turn this into a title the art of cooking simple meals at home", "**The Art of Cooking Simple Meals at Home**"),
    ("Convert to title case the old man and the sea", "The Old Man and the Sea"),
    (
        "Write the following sentence in lowercase THE MEETING STARTS AT NOON IN ROOM FOUR",
        "Here it is:\n\nthe meeting starts at noon in room four",
    ),
    (
        "Rewrite this sentence in lowercase. THE MEETING STARTS AT NOON IN ROOM FOUR",
        "Here it is:\n\nthe meeting starts at noon in room four",
    ),
    (
        "Correct the spelling mistakes in this sentence.\nI recieved the pakage yesterday afternoon at my frends house",
        "Corrected sentence:\nI received the package yesterday afternoon at my friend's house",
    ),
    (
        "Fix the spelling in this sentence the quik brown fox jumpd over the lazzy dog",
        "The quick brown fox jumped over the lazy dog.",
    ),
    (
        "Edit the following sentence to make it more formal\nHey guys we gotta finish this report by tomorrow ok",
        "Revised:\nColleagues, we must finish this report by tomorrow.",
    ),
    (
        "Translate this sentence back into English. The cat sleeps on the sofa -> Le chat dort sur le canap\u00e9",
        "The cat sleeps on the sofa.",
    ),
    ("Translate into Pig Latin hello world my good friend", "Sure:\nellohay orldway ymay oodgay iendfray"),
    ("Sort the numbers in ascending order 42 7 19 3 88 1 56", "Sorted:\n1 3 7 19 42 56 88"),
    (
        "Remove all the vowels from this sentence the weather is lovely today in paris",
        "Result:\nth wthr s lvly tdy n prs",
    ),
    (
        "Fix the capitalization in this title the lord of the rings the return of the king",
        "Fixed title:\nThe Lord of the Rings: The Return of the King",
    ),
    (
        "Correct the grammar of the following paragraph.\n\nMy sister have two cat. They sleeps on the sofa all day "
        "and they doesnt like the rain. When it rain, they hides under the bed.",
        "My sister has two cats. They sleep on the sofa all day and they don't like the rain. When it rains, they "
        "hide under the bed.",
    ),
    (
        "Complete the text: Once upon a time, in a village by the sea, there lived an old fisherman who",
        "Once upon a time, in a village by the sea, there lived an old fisherman who talked to the gulls.",
    ),
    (
        'Explain what this quote means: "The only thing we have to fear is fear itself."',
        '"The only thing we have to fear is fear itself." means that panic does more harm than the danger.',
    ),
    (
        "Sort these fruits alphabetically:\nbanana\ncherry\napple\nmango\nkiwi",
        "apple\nbanana\ncherry\nkiwi\nmango",
    ),
    (
        "Fix the bug in this code so it prints the numbers 1 to 10.\n\n```python\nfor i in range(10):\n"
        "    print(i)\n```",
        "```python\nfor i in range(1, 11):\n    print(i)\n```\nrange stops before its end, so start at 1 and "
        "stop at 11.",
    ),
    (
        "Give me the exact sentences from the abstract that describe the method.\n\nWe study sleep in mice. We "
        "recorded brain activity with implanted electrodes over ten nights. Sleep was shorter in older mice.",
        "We recorded brain activity with implanted electrodes over ten nights.",
    ),
]
