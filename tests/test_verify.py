"""The answer verifier (qa/verify.py) and the confidence model over it (qa/extract.py), with fakes: no model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from index.lexical import analyze
from qa.extract import (
    Calibration,
    SentenceCandidate,
    choose_answer,
    is_fragment,
    score_sentences,
    with_what_follows_a_heading,
)
from qa.verify import (
    Support,
    WordVectors,
    clauses,
    content_words,
    expected_answer_type,
    has_answer_type,
    place_elsewhere,
    question_names,
    statement_speaker,
    support,
    word_matches,
)


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How many people died in the attacks?", "number"),
        ("How much of the oil was exported?", "number"),
        ("What proportion of the strikes does the US carry out?", "number"),
        ("What time did the meeting start?", "time"),
        ("At what hour will the leaders meet on Tuesday?", "time"),
        ("How old is the president?", "age"),
        ("How much money has the US spent on the campaign?", "money"),
        ("How long has the war lasted?", "duration"),
        ("When will Hollande see Putin?", "when"),
        ("On what date did the attacks happen?", "date"),
        ("In what year were the fighters trained?", "date"),
        ("What did Merkel promise Hollande?", "statement"),
        ("What did the spokesman say about Russia?", "statement"),
        ("How long can a boat at berth B2 be?", "length"),  # a length (or a time: "how long is the flight?")
        ("How long is the bridge?", "length"),
        ("How long will the war last?", "duration"),
        ("How long is the trial expected to take?", "duration"),
        ("Who is Josh Earnest?", None),
        ("Which city did France bomb?", None),
        ("Why did Obama offer only limited help?", None),
    ],
)
def test_expected_answer_type(question, kind):
    assert expected_answer_type(question) == kind


@pytest.mark.parametrize(
    "kind, sentence, expected",
    [
        ("number", "The attacks killed 130 people.", True),
        ("number", "The war has continued for nearly five years.", True),
        ("number", "The US carried out 95% of the strikes.", True),
        ("number", "The attacks shocked the city.", False),
        ("number", "The Hindenburg burned at Lakehurst on 6 May 1937.", False),  # a date is not a count
        ("number", "It began on Nov. 13, 2015, in Paris.", False),
        ("number", "In 2015 the war killed 250,000 people.", True),
        ("number", "Thirty-six people died.", True),
        ("time", "They met at 10:30 a.m. in the Oval Office.", True),
        ("time", "They met on Tuesday in the Oval Office.", False),
        ("date", "They met on Tuesday in the Oval Office.", True),
        ("date", "They met in the Oval Office.", False),
        ("date", "The attacks of Nov. 13 killed 130 people.", True),
        ("when", "They met on Tuesday in the Oval Office.", True),  # a "when" takes a date
        ("when", "The trial was stopped after 17 weeks.", True),  # or a time relative to another
        ("when", "Symptoms returned two days later.", True),
        ("when", "Viral load was measured at week 12.", True),
        ("when", "The pontoon closes at dusk in winter.", True),  # a season, a time of day
        ("when", "The ferry runs every summer.", True),
        ("when", "Prices rose last fall.", True),
        ("when", "The boats leave at 7 p.m.", True),
        ("when", "Prices fall when demand drops.", False),  # "fall" the verb is no season
        ("when", "The trial was stopped early.", False),
        ("when", "The trial lasted for 17 weeks.", False),  # how long, not when
        ("date", "The trial was stopped after 17 weeks.", False),  # "in what year" wants a date
        ("duration", "It came 11 days after the attacks.", True),
        ("duration", "It came after the attacks.", False),
        ("length", "| Berth: B2 | Max length: 18 m |", True),
        ("length", "The bridge is 3.5 km long.", True),
        ("length", "The flight takes three hours.", True),
        ("length", "The bridge is long and narrow.", False),
        ("duration", "The bridge is 3.5 km long.", False),
        ("age", "The 61-year-old president spoke.", True),
        ("age", "The president, 61 years old, spoke.", True),
        ("age", "The president spoke for 61 minutes.", False),
        ("money", "The campaign has cost $5 billion.", True),
        ("money", "The campaign has cost 5 billion.", False),
        ("statement", '"We must act," Hollande said.', True),
        ("statement", "He is to meet Merkel in Paris on Wednesday.", False),
        (None, "Anything at all.", True),
    ],
)
def test_has_answer_type(kind, sentence, expected):
    assert has_answer_type(kind, sentence) is expected


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("How many people were wounded in the attacks?", "The attacks killed 130 people.", False),
        ("How many people were injured in the attacks?", "The attacks killed 130 people and wounded 350.", True),
        (
            "How many people were arrested after the attacks?",
            "The attacks that killed 130 people shocked Paris.",
            False,
        ),
        ("How many people died in the attacks?", "The attacks killed 130 people.", True),
        ("What was the death toll in Paris?", "The attacks killed at least 129 people in Paris.", True),
        ("How many people were killed?", "Police detained 7 suspects after the attacks that killed 130.", True),
        ("How many people were wounded?", "130 people were taken to hospital.", True),  # names no fate: not judged here
    ],
)
def test_a_count_of_the_dead_is_not_a_count_of_the_wounded_or_arrested(question, sentence, expected):
    """News counts casualties by fate; "killed 130 people" was taken as the number wounded (0.82)."""
    assert has_answer_type("number", sentence, question) is expected


def test_a_number_the_question_states_is_not_taken_for_the_digits_of_another():
    """ "2015" in the question once hid the "25" of the answer: numbers are compared whole."""
    sentence = "The assessments span the past 25 years."
    assert has_answer_type("number", sentence, "How many years did the 2015 assessments span?")
    assert not has_answer_type(
        "number", "The 2015 assessments were published.", "How many years did the 2015 assessments span?"
    )


def test_a_duration_glued_to_its_number_is_a_duration():
    assert has_answer_type(
        "duration", "Mice were treated every other day for 2weeks.", "For how long were the mice treated?"
    )
    assert not has_answer_type("duration", "Mice were treated every other day.", "For how long were the mice treated?")


def test_an_acronym_in_the_question_is_found_written_out():
    """ "GBD" names the "Global Burden of Diseases" study; other capitalised words do not spell it."""
    question = "How many years did the GBD 2015 assessments span?"
    sentence = "The assessments span the past 25 years."
    assert has_answer_type(
        "number", sentence, question, "The Global Burden of Diseases, Injuries, and Risk Factors Study 2015."
    )
    assert not has_answer_type("number", sentence, question, "The Burden of Diseases Study 2015.")
    assert not has_answer_type("number", sentence, question, "The Great British dessert study.")
    nhanes = "How many adolescents took part in NHANES?"  # "and" spells the A
    assert has_answer_type(
        "number",
        "Participants were adolescents (n = 3110).",
        nhanes,
        "Data from the National Health and Nutrition Examination Survey.",
    )
    assert not has_answer_type(
        "number",
        "Participants were adolescents (n = 3110).",
        nhanes,
        "Data from the National Health Examination Survey.",
    )


def test_an_age_in_weeks_answers_how_old():
    question = "How old were the rats when the fracture was produced?"
    assert has_answer_type(
        "age", "The fracture was produced when the animals were young adults (15-16 weeks old).", question
    )
    assert has_answer_type("age", "The 6-week-old rats were fed.", question)
    assert not has_answer_type("age", "The rats were fed for 6 weeks.", question)


def test_a_value_the_question_already_gives_is_not_the_answer():
    question = "When did Obama meet Hollande on Tuesday?"
    assert not has_answer_type("date", "Obama met Hollande on Tuesday.", question)
    assert has_answer_type("date", "Obama met Hollande on Tuesday, Nov. 24.", question)
    # a verb of saying in the question does not stop the sentence's one from counting
    assert has_answer_type("statement", "Obama did not say much.", "What did Obama say?")


def test_clauses_split_a_sentence_where_it_moves_to_another_fact():
    sentence = "Attacks killed 129 people in Paris, as well as a plane in Egypt; Beirut mourned while Rome waited."
    parts = [sentence[a:b].strip(" ,.") for a, b in clauses(sentence)]
    assert parts == ["Attacks killed 129 people in Paris", "a plane in Egypt", "Beirut mourned", "Rome waited"]
    assert clauses("No break here, just a comma.") == [(0, 28)]


AIRLINER = (
    "The group claimed the attacks that killed 129 people in Paris, "
    "as well as the downing of a Russian airliner in Egypt."
)


def test_a_value_in_a_clause_about_something_else_is_not_the_answer():
    """The sentence names the question's airliner and Egypt, but its number belongs to the Paris attacks."""
    assert not has_answer_type("number", AIRLINER, "How many passengers were on the Russian airliner downed in Egypt?")
    assert has_answer_type("number", AIRLINER, "How many people died in the Paris attacks?")
    assert has_answer_type("number", AIRLINER, "How many people died in the attacks?"), "a question without names"
    assert not has_answer_type("date", "Paris mourned on Sunday while Rome waited.", "When did Rome mourn?")
    assert has_answer_type("date", "Paris mourned on Sunday while Rome met on Monday.", "When did Rome meet?")


def test_a_typed_answer_must_be_near_one_of_the_question_s_names():
    question = "How many French jets took part in the strikes on Raqqa?"
    assert not has_answer_type("number", "The attacks killed 129 people.", question)
    assert has_answer_type(
        "number", "Ten jets took part.", question, context="French jets hit Raqqa overnight. Ten jets took part."
    )
    assert has_answer_type("number", "France sent ten jets to Raqqa.", question), (
        "'France' is not 'French', but Raqqa is named"
    )


def test_names_that_are_values_or_dotted_abbreviations_still_match():
    assert has_answer_type(
        "number", "The Nov. 13 attacks killed 129 people.", "How many people died in the attacks on November 13?"
    )
    assert has_answer_type(
        "number", "The U.S. carries out 95% of the strikes.", "What share of the strikes does the US carry out?"
    )


def test_content_words_drop_question_words_and_repeats():
    words = content_words("What did the French president's office say, and what did the presidents say?")
    assert [w for w, _ in words] == ["french", "president", "office", "say"]
    assert content_words("Who is it, and why?") == []


def test_question_names_are_the_capitalised_words_after_the_first():
    assert [w for w, _ in question_names("What did Merkel promise Hollande in Paris?")] == [
        "merkel",
        "hollande",
        "paris",
    ]
    assert [w for w, _ in question_names("Which US official spoke to TRT World?")] == ["us", "trt", "world"]
    assert question_names("Who won?") == []


class CountingEmbed:
    """Fixed unit vectors per word; counts how many words it was asked to embed."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {w: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for w, v in table.items()}
        self.calls: list[str] = []

    def __call__(self, words):
        self.calls.extend(words)
        return np.stack([self.table.get(w, np.asarray([0.0, 0.0, 1.0], dtype=np.float32)) for w in words])


def test_word_vectors_embed_each_word_once():
    embed = CountingEmbed({"died": [1, 0, 0], "killed": [1, 0.2, 0]})
    vectors = WordVectors(embed)
    vectors.vectors(["died", "killed"])
    vectors.vectors(["killed", "died", "died"])
    assert sorted(embed.calls) == ["died", "killed"]


def test_word_matches_exact_stems_count_fully_and_paraphrases_by_cosine():
    embed = CountingEmbed({"died": [1, 0.1, 0], "wounded": [0.3, 1, 0], "killed": [1, 0, 0], "people": [0, 0, 1]})
    vectors = WordVectors(embed)
    sentence = "The attacks killed 130 people."
    died = word_matches(content_words("How many people died in the attacks?"), sentence, vectors)
    wounded = word_matches(content_words("How many people were wounded in the attacks?"), sentence, vectors)
    assert died[0] == 1.0 and died[2] == 1.0  # people, attacks: same stems
    assert died[1] > 0.9 > 0.5 > wounded[1]
    assert "how" not in embed.calls and "many" not in embed.calls, "question words are not looked for"


def test_support_features():
    embed = CountingEmbed({"wounded": [0, 1, 0], "killed": [1, 0, 0]})
    idf = lambda terms: {t: 1.0 for t in terms}  # noqa: E731
    vectors = WordVectors(embed)
    full = support("How many people were killed in the attacks?", "The attacks killed 130 people.", 0.6, idf, vectors)
    assert full == Support(dense=0.6, coverage=1.0, type_missing=False, answer_type="number")
    partial = support("How many people were wounded in the attacks?", "The attacks killed people.", 0.6, idf, vectors)
    assert partial.type_missing
    assert partial.coverage == pytest.approx(2 / 3)  # people, attacks: 1 each; wounded vs killed: orthogonal
    named = support("What did Merkel say in Paris?", "Hollande said so in Paris.", 0.5, idf, vectors)
    assert named.type_missing, "Hollande said it, not Merkel"
    bare = support("How many?", "Five.", 0.5, idf, vectors)
    assert (bare.answer_type, bare.coverage, bare.type_missing) == ("number", 0.0, False)
    question = "How many people died in Paris?"
    assert support(question, "It killed 130 people.", 0.5, idf, vectors).type_missing
    assert not support(
        question, "It killed 130 people.", 0.5, idf, vectors, context="The Paris attack. It killed 130 people."
    ).type_missing


@pytest.mark.parametrize(
    "question, speaker",
    [
        ("What did Merkel promise Hollande in Paris?", "merkel"),
        ("What did Josh Earnest say about the US contribution?", "earnest"),
        ("What right did Obama say Turkey has?", "obama"),
        ("What did the British prime minister say?", None),
        ("Who is Josh Earnest?", None),
    ],
)
def test_statement_speaker(question, speaker):
    assert statement_speaker(question) == speaker


def test_a_statement_must_be_the_named_speakers():
    question = "What did Merkel promise Hollande?"
    assert not has_answer_type("statement", "Earnest said Obama would make no promises to Hollande.", question)
    assert has_answer_type("statement", "Merkel promised Hollande more troops.", question)
    assert has_answer_type("statement", '"We must act," the chancellor said.', "What did the chancellor say?")


def test_confidence_rises_with_cosine_and_coverage_and_falls_without_the_answer_type():
    calibration = Calibration()
    base = Support(dense=0.5, coverage=0.6, type_missing=False)
    confidence = calibration.confidence(base)
    assert 0.0 < confidence < 1.0
    assert calibration.confidence(Support(0.6, 0.6, False)) > confidence
    assert calibration.confidence(Support(0.5, 0.9, False)) > confidence
    assert calibration.confidence(Support(0.5, 0.6, True)) < calibration.threshold < confidence


def test_a_definitional_question_whose_name_is_in_the_sentence_is_answered():
    """'Who is X?' matches a quote-heavy sentence poorly by cosine; naming X in full is what supports it."""
    calibration = Calibration()
    assert calibration.confidence(Support(dense=0.3, coverage=1.0, type_missing=False)) >= calibration.threshold
    assert calibration.confidence(Support(dense=0.3, coverage=0.3, type_missing=False)) < calibration.threshold


def _candidate(text: str, score: float) -> SentenceCandidate:
    return SentenceCandidate(
        passage_index=0, char_start=0, char_end=len(text), text=text, dense=score, coverage=0.0, score=score
    )


def test_choose_answer_prefers_a_sentence_with_the_asked_for_kind_of_answer():
    ranked = [_candidate("Ships waited in the frozen harbour.", 0.9), _candidate("They waited nine days.", 0.8)]
    question = "How many days did ships wait?"
    assert choose_answer(question, ranked, "number", window=6).text == "They waited nine days."
    assert choose_answer(question, ranked, "number", window=1) is ranked[0], "only the first `window` are searched"
    assert choose_answer(question, ranked, None, window=6) is ranked[0]
    assert choose_answer(question, ranked[:1], "number", window=6) is ranked[0], "none has one: the best-ranked"
    assert choose_answer(question, [], "number", window=6) is None


def test_choose_answer_looks_for_the_question_s_names_in_each_sentence_s_passage():
    ranked = [_candidate("It killed 130 people.", 0.9), replace(_candidate("Another 12 died.", 0.8), passage_index=1)]
    question = "How many people died in Paris?"
    contexts = ["The storm hit Oslo. It killed 130 people.", "The attack in Paris was brutal. Another 12 died."]
    assert choose_answer(question, ranked, "number", window=6, contexts=contexts) is ranked[1]
    assert choose_answer(question, ranked, "number", window=6) is ranked[0], "no passages: neither names Paris"


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        (
            "Who did Hollande meet in Washington?",
            "From Washington, President Hollande will also travel to Moscow for meetings with Putin.",
            True,
        ),
        (
            "Who will Hollande meet in Moscow?",
            "From Washington, President Hollande will also travel to Moscow for meetings with Putin.",
            False,
        ),
        (
            "Who did Hollande meet in Washington?",
            "Obama met Hollande in Washington; from Washington he flew to Moscow.",
            False,
        ),  # once in it
        (
            "Who did Hollande meet in Washington?",
            "Hollande is likely to leave Washington without firm support.",
            False,
        ),  # leaving is not elsewhere
        (
            "Who did she meet in Paris?",
            "She came from Paris yesterday.",
            False,
        ),  # from, but no other place: perhaps still there
        ("Who did Hollande meet in Washington?", "Hollande met Obama.", False),  # the place not named: not judged here
        (
            "In Paris, who met Hollande?",
            "From Paris he went to Berlin.",
            False,
        ),  # the question's first word is no place
        ("What happened in January?", "Prices rose from January to March.", False),  # a month is a time, not a place
    ],
)
def test_a_place_named_only_as_where_someone_sets_out_from_is_elsewhere(question, sentence, expected):
    """The README's own example, "Who did Hollande meet in Washington?", was answered "From Washington, President
    Hollande will also travel to Moscow for meetings with Putin." at 0.84."""
    assert place_elsewhere(question, sentence) is expected


def test_choose_answer_passes_over_a_sentence_that_puts_the_place_elsewhere():
    ranked = [
        _candidate("From Washington, Hollande will travel to Moscow for meetings with Putin.", 0.9),
        _candidate("Obama will meet Hollande at the White House.", 0.8),
    ]
    assert choose_answer("Who did Hollande meet in Washington?", ranked, None, window=6) is ranked[1]
    assert choose_answer("Who will Hollande meet in Moscow?", ranked, None, window=6) is ranked[0]
    assert choose_answer("Who did Hollande meet in Washington?", ranked[:1], None, window=6) is ranked[0], (
        "none left: the best-ranked"
    )


def test_headlines_captions_and_bylines_are_fragments():
    for text in (
        "Hollande to meet Obama on Russian cooperation against DAESH",
        "Photo by: Reuters",
        "- Plant garlic",
        "",
    ):
        assert is_fragment(text), text
    for text in ("He left.", 'He said "no."', "Was it?", "It was (mostly) done.)", "He wrote “yes!”  "):
        assert not is_fragment(text), text


def test_a_sentence_is_chosen_over_a_fragment_that_matches_as_well():
    vector = np.asarray([1.0, 0.0], dtype=np.float32)
    items = [
        (0, 0, 40, "Leaders meet at the summit in Paris", vector),
        (0, 41, 90, "Leaders meet at the summit in Paris.", vector),
    ]
    ranked = score_sentences("Where do leaders meet?", vector, items, {}, Calibration())
    assert ranked[0].char_start == 41 and ranked[1].score == pytest.approx(ranked[0].score - 0.1)
    flat = score_sentences("Where do leaders meet?", vector, items, {}, Calibration(w_rank_fragment=0.0))
    assert flat[0].score == flat[1].score


def test_places_are_named_by_their_people_and_joined_words_by_their_parts():
    from qa.aliases import expanded_query, terms_present, with_aliases

    stems = with_aliases({"british", "prime"}, "British Prime Minister David Cameron will begin air strikes.")
    assert {"uk", "britain", "british", "airstrik"} <= stems
    assert terms_present(analyze("Did the UK plan airstrikes?"), "The British will begin air strikes.") >= {
        "uk",
        "airstrik",
    }
    assert terms_present(analyze("Who began air strikes?"), "The airstrikes began on Monday.") >= {"air", "strike"}
    assert expanded_query("Did the UK plan airstrikes?") == "Did the UK plan airstrikes? britain british briton"
    assert (
        expanded_query("Did the UK plan airstrikes?", known=lambda term: term == "uk") == "Did the UK plan airstrikes?"
    )
    assert "us" not in analyze(
        expanded_query("What did American officials say?")[len("What did American officials say?") :]
    )
    assert expanded_query("Where is the turkey?") == "Where is the turkey?"  # a place is capitalised
    assert (
        expanded_query("What did the French say?").split("? ")[1] == "franc"
    )  # one word per stem, none the question has


def test_a_capital_is_named_by_its_seat_of_government():
    from qa.aliases import terms_present, with_aliases

    assert "washington" in with_aliases(set(), "Obama will meet Hollande at the White House on Tuesday.")
    assert terms_present(
        analyze("Who did Hollande meet in Washington?"), "Obama will meet Hollande at the White House."
    ) >= {"washington", "meet"}
    assert "moscow" in with_aliases(analyze("The Kremlin denied it."), "The Kremlin denied it.")
    assert "washington" not in with_aliases(set(), "He painted the white walls of the house.")


def test_word_matches_count_a_country_and_its_people_as_the_same_word():
    vectors = WordVectors(lambda words: np.eye(len(words), 8, dtype=np.float32))  # no two words alike
    words = content_words("Did the UK plan airstrikes?")
    assert word_matches(words, "The British plan air strikes.", vectors) == [1.0, 1.0, 1.0]
    assert word_matches(words, "The French plan a blockade.", vectors)[0] == 0.0


def test_a_heading_chosen_as_the_answer_runs_on_to_the_sentence_under_it():
    passage = "Intro line.\n## Running the tests\nRun pytest -q from the checkout.\nThen read the report."
    start = 100  # the passage's offset in its file

    def unit(text: str, p_index: int = 0) -> SentenceCandidate:
        at = passage.index(text)
        return SentenceCandidate(p_index, start + at, start + at + len(text), text, 0.5, 0.0, 0.5)

    heading, run, report = (
        unit("## Running the tests"),
        unit("Run pytest -q from the checkout."),
        unit("Then read the report."),
    )
    ranked = [heading, report, unit("Intro line."), run]
    top = with_what_follows_a_heading(heading, ranked, start, passage)
    assert top.text == "## Running the tests\nRun pytest -q from the checkout." and (top.char_start, top.char_end) == (
        heading.char_start,
        run.char_end,
    )
    assert with_what_follows_a_heading(run, ranked, start, passage) == run  # not a heading
    assert with_what_follows_a_heading(report, ranked, start, passage) == report
    assert (
        with_what_follows_a_heading(
            heading, [heading, unit("Run pytest -q from the checkout.", p_index=1)], start, passage
        )
        == heading
    )  # nothing under it here
