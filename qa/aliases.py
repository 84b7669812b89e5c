"""Other names for what a question names: a country and its people ("the UK", "British"), and two words
written as one ("air strikes", "airstrikes"). The answer check matches words through them, and BM25 is
asked for the other names of a place the question names."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from index.lexical import analyze
from index.normalize import WORD, fold

_PLACES = (
    "uk britain british briton britons",
    "us usa america american americans",
    "france french",
    "germany german germans",
    "russia russian russians",
    "syria syrian syrians",
    "turkey turkish turks",
    "iraq iraqi iraqis",
    "iran iranian iranians",
    "china chinese",
    "japan japanese",
    "egypt egyptian egyptians",
    "israel israeli israelis",
    "spain spanish spaniards",
    "italy italian italians",
    "canada canadian canadians",
    "australia australian australians",
    "india indian indians",
    "mexico mexican mexicans",
    "ukraine ukrainian ukrainians",
    "belgium belgian belgians",
    "netherlands dutch",
    "poland polish poles",
    "greece greek greeks",
    "sweden swedish swedes",
    "norway norwegian norwegians",
    "denmark danish danes",
    "ireland irish",
    "scotland scottish scots",
    "switzerland swiss",
    "austria austrian austrians",
    "portugal portuguese",
    "brazil brazilian brazilians",
    "argentina argentine argentinian",
    "pakistan pakistani pakistanis",
    "afghanistan afghan afghans",
    "saudi saudis",
    "korea korean koreans",
    "vietnam vietnamese",
    "nigeria nigerian nigerians",
    "kenya kenyan kenyans",
    "europe european europeans",
    "africa african africans",
    "asia asian asians",
    # a capital and the seat of government that news names it by ("met at the White House")
    "washington whitehouse",
    "moscow kremlin",
    "london downingstreet",
    "paris elysee élysée",
)
"""Names of a country (or continent) and of its people, each line one place: "the UK" is named by "British";
and a capital named by its seat of government (two words such as "White House" are matched written as one)."""
_ALIASES: dict[str, frozenset[str]] = {}
"""Stem of each name of a place -> the stems of all its names."""
_ALIASES_LOCK = threading.Lock()


def place_aliases() -> dict[str, frozenset[str]]:
    with _ALIASES_LOCK:  # built on first use: the stemmer is not loaded for `qa --help`
        if not _ALIASES:
            for line in _PLACES:
                group = frozenset(analyze(line))
                _ALIASES.update((stem, group) for stem in group)
        return _ALIASES


def with_aliases(stems: set[str], text: str) -> set[str]:
    """stems and what else names the same: the other names of a place ("uk", "british"), and two adjacent
    words of text written as one ("air strikes": "airstrik", the stem of "airstrikes"), and of such a pair
    ("White House": "washington")."""
    places = place_aliases()
    words = [w for w in WORD.findall(fold(text).lower()) if w.isalpha()]
    out = set(stems) | set(analyze(" ".join(a + b for a, b in zip(words, words[1:]) if len(a) > 1 and len(b) > 1)))
    for stem in list(out):
        out |= places.get(stem, frozenset())
    return out


def joined_hits(terms: list[str], stems: set[str]) -> set[int]:
    """Indexes of adjacent terms that stems hold written as one word ("air", "strike": "airstrik")."""
    hits: set[int] = set()
    for i, (a, b) in enumerate(zip(terms, terms[1:])):
        joined = analyze(a + b)
        if joined and joined[0] in stems:
            hits |= {i, i + 1}
    return hits


def terms_present(question_terms: list[str], sentence: str) -> set[str]:
    """The question's (analysed) terms that the sentence holds, as they are, by another name, or joined."""
    stems = with_aliases(set(analyze(sentence)), sentence)
    return {t for t in question_terms if t in stems} | {question_terms[i] for i in joined_hits(question_terms, stems)}


_CAPITALISED = re.compile(r"\b(?:U\.S\.|U\.K\.|[A-Z][A-Za-z]+)")


def expanded_query(question: str, known: Callable[[str], bool] = lambda term: False) -> str:
    """The question with the other names of each place it names (capitalised: "Turkey", not "turkey") that
    the documents never use (known(term) is false), for BM25: "Did the UK plan air strikes?" also asks
    for "britain british briton" where no text says "UK". A name the documents do use is left alone:
    adding its other names too would weigh the place several times over the rest of the question. "us"
    is never added: BM25 reads the pronoun the same."""
    places = place_aliases()
    asked = set(analyze(question)) | set(analyze(question.replace(".", "")))
    extra: dict[str, None] = {}
    for word in _CAPITALISED.findall(fold(question)):
        stems = analyze(word.replace(".", ""))
        if stems and stems[0] in places and not known(stems[0]):
            extra.update(dict.fromkeys(sorted(places[stems[0]] - asked - {"us"})))
    return question if not extra else question + " " + " ".join(extra)
