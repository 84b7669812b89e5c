"""Checking that an answer sentence supports its question: the question's key words and the kind of answer it wants."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.lexical import STOPWORDS_EN, analyze
from index.normalize import WORD, fold
from qa.aliases import joined_hits, with_aliases

QUESTION_WORDS = frozenset(
    """what what's which who who's whom whose when where why how many much did do does done is isn't are was were
    be been being has have had can could would should shall may might must i you he she we me him her us them my your
    his its our their this those these there here about after before from up out over under than so very also just
    ever exactly actually really according""".split()
) | frozenset(STOPWORDS_EN)
"""Words that shape a question rather than say what it is about; they are not looked for in the answer."""

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
    "eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|"
    "dozens?|half|halves|thirds?|quarters?|percent|single|double|twice|once"
)
_NUMBER = re.compile(rf"\d+(?:[.,]\d+)*|\b(?:{_NUMBER_WORDS})\b|%", re.IGNORECASE)
"""Whole numbers, so that a number the question states ("2015") is not taken for the digits of another ("25")."""
_CLOCK = re.compile(
    r"\b\d{1,2}(?::\d{2})?\s*(?:a\.?m\b|p\.?m\b)|\b\d{1,2}:\d{2}\b|\b(?:noon|midday|midnight|morning|afternoon|evening|"
    r"night|tonight|overnight|dawn|dusk|o'clock)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec|yesterday|today|tomorrow|"
    r"weekend|(?:last|next|this|earlier|later) (?:week|month|year)|(?:1[5-9]|20)\d\d)\b",
    re.IGNORECASE,
)
_DURATION = re.compile(
    rf"(?:\d+[\s-]*|\b(?:{_NUMBER_WORDS}|a|an|several|few|many)[\s-]+)(?:\w+[\s-]+)?(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?)\b",
    re.IGNORECASE,
)

_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE_DIGITS = re.compile(
    rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?\b|\b{_MONTH}\s+{_DAY}(?:,?\s+\d{{4}})?\b|\b{_MONTH}\s+\d{{4}}\b"
    r"|\b(?:in|since|until|by|from|of|before|after)\s+(?:1[5-9]|20)\d\d\b",
    re.IGNORECASE,
)
"""Digits that write a date ("6 May 1937", "Nov. 13", "in 2015"): a count is not a date."""

_RELATIVE_TIME = re.compile(
    rf"\b(?:after|within|in|before|until|by)\s+(?:the\s+(?:first|next|last)\s+)?(?:{_DURATION.pattern})"
    rf"|(?:{_DURATION.pattern})\s+(?:later|after|afterwards|earlier|before|ago|on)\b"
    r"|\b(?:at|by|in|from|until|after)\s+(?:week|month|year|day)\s+\d+\b",
    re.IGNORECASE,
)
"""A time given relative to another ("after 17 weeks", "two days later", "at week 12"): answers "when" in
trial reports and news alike, though it names no date."""
_SEASON = re.compile(
    r"\b(?:in|during|by|until|since|through|every|each|this|last|next|early|late|mid)[\s-]+(?:the\s+)?(?:spring|summer|autumn|fall|winter)\b"
    r"|\b(?:spring|summer|autumn|winter)(?:time)?\b",
    re.IGNORECASE,
)
"""A season ("in winter", "last fall"): "fall" only after a word that makes it one."""
_WHEN = re.compile(rf"{_DATE.pattern}|{_RELATIVE_TIME.pattern}|{_SEASON.pattern}|{_CLOCK.pattern}", re.IGNORECASE)
"""A "when" is answered by a date, a time relative to another, a season or a time of day ("at dusk in winter")."""

_AGE = re.compile(
    r"\b\d+(?:\s*[-–]\s*\d+)?[\s-]+(?:years?|months?|weeks?|days?)[\s-]+old\b|\baged?\s+\d+|\b\d+-(?:year|month|week|day)-old\b",
    re.IGNORECASE,
)
"""An age in years, or in months, weeks or days for the young and for lab animals ("15-16 weeks old")."""
_MONEY = re.compile(r"[$€£¥]|\b(?:dollars?|euros?|pounds?|cents?|usd|eur|gbp)\b", re.IGNORECASE)
_STATEMENT = re.compile(
    r"[\"“”«»]|\b(?:say|says|said|tell|tells|told|state|states|stated|promise[sd]?|pledge[sd]?|announce[sd]?|claim(?:s|ed)?|"
    r"warn(?:s|ed)?|urge[sd]?|declare[sd]?|add(?:s|ed|ing)|insist(?:s|ed)?|acknowledge[sd]?|contends?|"
    r"call(?:s|ed)? for|"
    r"suggest(?:s|ed)?|repl(?:y|ies|ied)|respond(?:s|ed)?|agree[sd]?|vow(?:s|ed)?)\b",
    re.IGNORECASE,
)

_LENGTH = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mm|cm|m|km|metres?|meters?|kilometres?|kilometers?|centimetres?|centimeters?|miles?|feet|foot|ft|"
    r"inch(?:es)?|yards?|nautical miles?)\b",
    re.IGNORECASE,
)
"""A length or distance ("18 m", "3.5 km", "40 feet")."""

ANSWER_TYPES: tuple[tuple[str, re.Pattern, re.Pattern], ...] = (
    # (kind, what in the question asks for it, what in the sentence provides it); first match wins
    ("time", re.compile(r"\b(?:what|which|at what) (?:time|hour)\b|\bhow (?:late|early)\b", re.I), _CLOCK),
    ("age", re.compile(r"\bhow old\b|\bwhat age\b", re.I), _AGE),
    (
        "money",
        re.compile(
            r"\bhow much (?:money|cash|funding)\b"
            r"|\bhow much\b[^?]*\b(?:cost|costs|spend|spent|pay|paid|budget|worth|price)\b",
            re.I,
        ),
        _MONEY,
    ),
    # "how long is the bridge / can a boat be": a length, or a time ("how long is the flight")
    (
        "length",
        re.compile(
            r"\bhow long (?:is|are|was|were|can|could|may|might|must|should|will)\b(?![^?]*\b(?:take|last)s?\b)", re.I
        ),
        re.compile(rf"{_LENGTH.pattern}|{_DURATION.pattern}", re.I),
    ),
    ("duration", re.compile(r"\bhow long\b", re.I), _DURATION),
    ("when", re.compile(r"^when\b|\bwhen (?:did|does|do|is|was|will|were|are|has|had)\b", re.I), _WHEN),
    ("date", re.compile(r"\b(?:what|which|in what|on what) (?:date|day|year|month)\b", re.I), _DATE),
    (
        "number",
        re.compile(
            r"\bhow (?:many|much)\b|\bwhat (?:number|percentage|proportion|share|fraction)\b|\bdeath toll\b", re.I
        ),
        _NUMBER,
    ),
    # "what did X say / promise / tell Y": the answer is something someone said
    (
        "statement",
        re.compile(
            r"\b(?:did|does|do|will|would|has|have|had)\b[^?]*\b(?:say|tell|promise|pledge|announce|warn|urge|declare|reply|respond|vow)\b",
            re.I,
        ),
        _STATEMENT,
    ),
)


def expected_answer_type(question: str) -> str | None:
    """The kind of answer a question wants when it can be recognised on the surface (number, date, time, duration)."""
    folded = fold(question)
    for kind, asks, _ in ANSWER_TYPES:
        if asks.search(folded):
            return kind
    return None


_SPEAKER = re.compile(r"\b(?:did|does|do|will|would|has|have|had)\s+((?:[A-Z][\w'’.-]*\s+)+)")


def statement_speaker(question: str) -> str | None:
    """The named speaker of "What did <Name> say / promise ...?" (its last word), if the question names one."""
    match = _SPEAKER.search(fold(question))
    if not match:
        return None
    words = match.group(1).split()
    return words[-1].rstrip(".").removesuffix("'s").removesuffix("’s").lower() or None


_FATES = (
    re.compile(r"\b(?:die[sd]?|dying|dead|deaths?|kill(?:s|ed|ing)?|fatal(?:ities|ly)?|lives|toll)\b", re.IGNORECASE),
    re.compile(r"\b(?:wound(?:s|ed|ing)?|injur(?:y|ies|ed|ing|e|es)|hurt)\b", re.IGNORECASE),
    re.compile(r"\b(?:arrest(?:s|ed|ing)?|detain(?:s|ed|ing)?|detention|custody)\b", re.IGNORECASE),
)
"""The dead, the wounded, the arrested: a news count of one is not a count of another."""


def _other_fate(question: str, sentence: str) -> bool:
    """Whether the question counts one fate (killed, wounded, arrested) and the sentence counts only others:
    "killed 130 people" does not say how many were wounded."""
    asked = [i for i, fate in enumerate(_FATES) if fate.search(question)]
    told = [i for i, fate in enumerate(_FATES) if fate.search(sentence)]
    return len(asked) == 1 and bool(told) and asked[0] not in told


_ASKED_PLACE = re.compile(r"\b(?:in|at)\s+([A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*)")
"""Where the question puts what it asks about: "Who did Hollande meet in Washington?"."""
_FROM = re.compile(r"\bfrom\s+(?:the\s+)?$", re.IGNORECASE)
_DESTINATION = re.compile(r"\b(?:to|for|into)\s+(?:the\s+)?[A-Z]")


def place_elsewhere(question: str, sentence: str) -> bool:
    """Whether the sentence names the place the question asks about ("... in Washington?") only as where someone
    sets out from for another: "From Washington, Hollande will travel to Moscow for meetings with Putin" says whom
    he meets in Moscow, not in Washington. Leaving a place is not enough: "Hollande is likely to leave Washington
    without firm support" tells what he got there."""
    match = _ASKED_PLACE.search(fold(question))
    if not match or match.start() == 0:
        return False
    place = match.group(1).split()[0].rstrip(".").removesuffix("'s").removesuffix("’s")
    if place.lower() in QUESTION_WORDS or _DATE.fullmatch(
        place
    ):  # "in January" is a time: "from January to March" holds it
        return False
    text = fold(sentence)
    found = [m.start() for m in re.finditer(rf"\b{re.escape(place)}\b", text, re.IGNORECASE)]
    if not found:
        return False
    return _DESTINATION.search(text) is not None and all(_FROM.search(text[:at]) for at in found)


def has_answer_type(kind: str | None, sentence: str, question: str = "", context: str = "") -> bool:
    """Whether the sentence holds an answer of that kind that the question does not already state.

    A statement must also name its speaker when the question does: "What did Merkel say?" is not answered by
    what someone else said. Any other kind must be about what the question names: when the question names
    something, the sentence or its context (the passage) must name one of those too, and the answer must sit in a
    clause that holds the question's names the sentence has ("129 people in Paris, as well as ... a Russian
    airliner in Egypt" gives no count for the airliner)."""
    if kind is None:
        return True
    folded = fold(sentence)
    if kind == "statement":
        speaker = statement_speaker(question)
        if speaker and not any(w == speaker for w in WORD.findall(folded.lower())):
            return False
    provides = next(p for k, _, p in ANSWER_TYPES if k == kind)
    if kind == "number":  # "how many died" is not answered by the date of the fire
        folded = _DATE_DIGITS.sub(lambda m: " " * len(m.group()), folded)
        if _other_fate(fold(question), folded):
            return False
    # a value the question already gives ("... on Tuesday") is not the answer; a verb of saying is
    stated = set() if kind == "statement" else {m.group().lower() for m in provides.finditer(fold(question))}
    answers = [m.start() for m in provides.finditer(folded) if m.group().lower() not in stated]
    if kind == "statement" or not answers:
        return bool(answers)
    return _about_the_names(question, folded, fold(context), answers)


def _about_the_names(question: str, sentence: str, context: str, answers: list[int]) -> bool:
    """Whether answers (character offsets) of a sentence can be about what the question names: the sentence or its
    context names at least one of those, and one answer's clause holds all of them that the sentence has."""
    names = [s for w, s in question_names(question) if not _DATE.fullmatch(w)]  # "November" is a value, not a name
    acronyms = {w.lower() for w in WORD.findall(fold(question)) if 2 <= len(w) <= 6 and w.isupper() and w.isalpha()}
    text = sentence + " " + context
    if (
        names
        and not any(_has_stem(n, _stems(text)) for n in names)
        and not any(_spelled_out(a, text) for a in acronyms)
    ):
        return False
    return any(
        not displaced_names(names, sentence, c) for c in clauses(sentence) if any(c[0] <= a < c[1] for a in answers)
    )


_FILLERS = frozenset({"of", "and", "the", "for", "in", "on", "to", "&"})


def _spelled_out(acronym: str, text: str) -> bool:
    """Whether text writes the acronym out: capitalised words whose initials spell it, small words between them
    skipped or spelled ("Global Burden of Diseases" for GBD, "National Health and Nutrition Examination Survey"
    for NHANES)."""
    words = WORD.findall(text)

    def spells(j: int, k: int) -> bool:  # words[j:] spell acronym[k:]
        if k == len(acronym):
            return True
        if j == len(words):
            return False
        word = words[j]
        initial = word[:1].lower() == acronym[k]
        if word[:1].isupper():
            return initial and spells(j + 1, k + 1)
        return word.lower() in _FILLERS and ((initial and spells(j + 1, k + 1)) or spells(j + 1, k))

    return any(w[:1].isupper() and w[:1].lower() == acronym[0] and spells(i, 0) for i, w in enumerate(words))


_CLAUSE_BREAK = re.compile(r";|\bas well as\b|\bwhile\b|\bwhereas\b", re.IGNORECASE)


def clauses(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of the parts of a sentence that state separate facts.

    It splits at ';', 'as well as', 'while' and 'whereas'."""
    out, start = [], 0
    for match in _CLAUSE_BREAK.finditer(sentence):
        out.append((start, match.start()))
        start = match.end()
    return out + [(start, len(sentence))]


def displaced_names(names: list[str], sentence: str, clause: tuple[int, int]) -> list[str]:
    """The names (stems) that the sentence holds, but only outside the clause: the clause is about something else."""
    inside = _stems(sentence[clause[0] : clause[1]])
    outside = _stems(sentence[: clause[0]] + " " + sentence[clause[1] :])
    return [n for n in names if _has_stem(n, outside) and not _has_stem(n, inside)]


def _stems(text: str) -> set[str]:
    stems = (
        {s for _, s in content_words(text)} | set(analyze(text)) | set(analyze(text.replace(".", "")))
    )  # "U.S." is "us"
    return with_aliases(stems, text)


def _has_stem(stem: str, stems: set[str]) -> bool:
    return stem in stems or _shares_prefix(stem, stems)


def content_words(text: str) -> list[tuple[str, str]]:
    """(word, stem) of the words that say what a text is about, in order, without repeats."""
    seen: dict[str, tuple[str, str]] = {}
    for word in WORD.findall(fold(text).lower()):
        word = word[:-2] if word.endswith("'s") else word
        if word in QUESTION_WORDS or len(word) < 2:
            continue
        terms = analyze(word)
        if terms and terms[0] not in seen:
            seen[terms[0]] = (word, terms[0])
    return list(seen.values())


def question_names(question: str) -> list[tuple[str, str]]:
    """(word, stem) of the capitalised words of a question after its first word: the names it is about."""
    tokens = WORD.findall(fold(question))
    out: dict[str, tuple[str, str]] = {}
    for token in tokens[1:]:
        word = token[:-2] if token.lower().endswith("'s") else token
        lower = word.lower()
        if not word[:1].isupper() or (lower in QUESTION_WORDS and not (word.isupper() and len(word) > 1)):
            continue
        terms = analyze(lower) or [lower]
        out.setdefault(terms[0], (lower, terms[0]))
    return list(out.values())


class WordVectors:
    """Embeddings of single words, cached: how close a question word is to the words of a sentence."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], limit: int = 50_000) -> None:
        self._embed = embed
        self._cache: dict[str, np.ndarray] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def vectors(self, words: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            missing = sorted({w for w in words if w not in self._cache})
        if missing:
            fresh = dict(zip(missing, self._embed(missing)))
            with self._lock:
                if len(self._cache) + len(fresh) > self._limit:
                    self._cache.clear()
                self._cache.update(fresh)
        with self._lock:
            return {w: self._cache[w] for w in words if w in self._cache}


def word_matches(question_words: list[tuple[str, str]], sentence: str, vectors: WordVectors) -> list[float]:
    """For each question word, 1 if its stem is in the sentence, else its best word-vector cosine to a sentence word."""
    sentence_words = content_words(sentence)
    stems = with_aliases({s for _, s in sentence_words}, sentence)
    out = [1.0 if _has_stem(stem, stems) else None for _, stem in question_words]
    for i in joined_hits(
        [w for w, _ in question_words], stems
    ):  # the question's "air strikes", the sentence's "airstrikes"
        out[i] = 1.0
    pending = [w for (w, _), m in zip(question_words, out) if m is None]
    if pending and sentence_words:
        table = vectors.vectors(pending + [w for w, _ in sentence_words])
        keys = [w for w, _ in sentence_words if w in table]
        matrix = np.stack([table[w] for w in keys]) if keys else None
        for i, ((word, _), m) in enumerate(zip(question_words, out)):
            if m is None and matrix is not None and word in table:
                out[i] = max(0.0, float(np.max(matrix @ table[word])))
    return [0.0 if m is None else m for m in out]


def _shares_prefix(stem: str, stems: set[str]) -> bool:
    """'parliament' and 'parliamentari': one stem starts the other and is long enough to mean it."""
    return len(stem) >= 5 and any(len(s) >= 5 and (s.startswith(stem) or stem.startswith(s)) for s in stems)


@dataclass(frozen=True)
class Support:
    """How well one sentence supports a question: the verifier's features."""

    dense: float
    """Cosine of the sentence's embedding to the question's."""
    coverage: float
    """IDF-weighted mean over the question's content words of how well the sentence matches each (0..1)."""
    type_missing: bool
    """The question wants a number, date, time, duration, length, age, sum of money or a statement and the
    sentence has none
    (about what the question names: has_answer_type), or the sentence puts the place the question asks about
    elsewhere (place_elsewhere)."""
    answer_type: str | None = None
    """The kind of answer the question wants, if recognised."""


def support(
    question: str,
    sentence: str,
    dense: float,
    idf: Callable[[list[str]], dict[str, float]],
    vectors: WordVectors,
    context: str = "",
) -> Support:
    """Features of one (question, sentence) pair.

    idf maps stems to their IDF in the index; context is the sentence's passage."""
    words = content_words(question)
    kind = expected_answer_type(question)
    type_missing = not has_answer_type(kind, sentence, question, context) or place_elsewhere(question, sentence)
    if not words:
        return Support(dense, 0.0, type_missing, answer_type=kind)
    weights = idf([s for _, s in words])
    w = np.asarray([weights.get(s, 1.0) for _, s in words])
    m = np.asarray(word_matches(words, sentence, vectors))
    return Support(
        dense=dense,
        coverage=float((w * m).sum() / w.sum()) if w.sum() > 0 else 0.0,
        type_missing=type_missing,
        answer_type=kind,
    )
