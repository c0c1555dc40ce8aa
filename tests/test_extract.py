"""Answer extraction against replies written the way models really write them."""

from __future__ import annotations

import pytest

from examharness.extract import (
    Extraction,
    extract_choice,
    extract_numeric,
    letters,
    numeric_matches,
    parse_number,
)

CAPITALS = ["Paris", "London", "Berlin", "Madrid"]
ART = [
    "the first photographic exhibition in history",
    "the first use of color photography",
    "a court decision that determined that photographs could be considered works of art",
    "the invention of the zoopraxiscope",
]
CELL = ["the nucleus", "the mitochondria", "the ribosome", "the cell wall"]
FIVE = ["2", "4", "6", "8", "12"]
TRIANGLE = ["30 degrees", "45 degrees", "60 degrees", "90 degrees"]

LONG_COT = """Explanation for Problem 6: Daumier's lithograph mocks Nadar photographing Paris from a
balloon. Option A is tempting, since early exhibitions were in the 1850s, but the print dates from
1862. (B) is wrong: colour photography came decades later. The zoopraxiscope (D) was invented by
Muybridge in 1879, long after. The print responds to the 1862 French court ruling on photographs
as art.

The answer is therefore [C]"""

RAMBLE_135M = """Question: What is the capital of France?
A. Paris
B. London
C. Berlin
D. Madrid
Answer: The capital of France is Paris. Paris is a city in France. France is a country in Europe.
Paris is the capital of France. The capital of France is Paris."""

ECHO_135M = """What is the capital of France? (A) Paris (B) London (C) Berlin (D) Madrid

The capital of France is a very important city. It is known for many things. The city has many
buildings and people. I think the question is asking about the capital of France. The capital of
France is a city."""

MATH_COT = r"""Let the angles be $x$, $2x$ and $3x$. Then $x + 2x + 3x = 180$, so $6x = 180$ and
$x = 30$. The largest angle is $3x = 90$ degrees. (A) 30 degrees is the smallest angle, not the
largest.

Final answer: $\boxed{D}$"""

CHOICE_CASES: list[tuple[str, list[str], str, str | None, str]] = [
    # (reply, options, expected status, expected answer, expected rule)
    ("The answer is therefore [C]", ART, "answered", "C", "answer-is-therefore"),
    (LONG_COT, ART, "answered", "C", "answer-is-therefore"),
    ("Answer: C", CAPITALS, "answered", "C", "answer-colon"),
    ("ANSWER: B", CAPITALS, "answered", "B", "answer-colon"),
    ("**Answer:** D", CAPITALS, "answered", "D", "answer-colon"),
    ("Final answer: (A)", CAPITALS, "answered", "A", "answer-colon"),
    ("**C**", CAPITALS, "answered", "C", "bare-letter"),
    ("After weighing the options, **B. London** is correct.",
     CAPITALS, "answered", "B", "letter-text-is-correct"),
    ("$C$", CAPITALS, "answered", "C", "bare-letter"),
    (r"$\boxed{C}$", CAPITALS, "answered", "C", "boxed"),
    (r"\boxed{\text{B}}", CAPITALS, "answered", "B", "boxed"),
    (MATH_COT, TRIANGLE, "answered", "D", "answer-colon"),
    ("(C)", CAPITALS, "answered", "C", "bare-letter"),
    ("C)", CAPITALS, "answered", "C", "bare-letter"),
    ("the answer is C.", CAPITALS, "answered", "C", "answer-is"),
    ("The correct answer is (B) London.", CAPITALS, "answered", "B", "answer-is"),
    ("The best answer would be D because Madrid is in Spain.",
     CAPITALS, "answered", "D", "answer-is"),
    ("The answer is A because Paris is the capital.", CAPITALS, "answered", "A", "answer-is"),
    ("I believe the correct option is option B.", CAPITALS, "answered", "B", "answer-is"),
    ("Option C", CAPITALS, "answered", "C", "bare-letter"),
    ("I'd go with B here.", CAPITALS, "answered", "B", "my-answer"),
    ("I choose D.", CAPITALS, "answered", "D", "my-answer"),
    ("c", CAPITALS, "answered", "C", "bare-letter"),
    ("the answer is c", CAPITALS, "answered", "C", "answer-is"),
    ("answer: b.", CAPITALS, "answered", "B", "answer-colon"),
    ("C", CAPITALS, "answered", "C", "bare-letter"),
    ("  B.  ", CAPITALS, "answered", "B", "bare-letter"),
    ("[D]", CAPITALS, "answered", "D", "bare-letter"),
    ("B. London is the capital of the United Kingdom.",
     CAPITALS, "answered", "B", "leading-letter"),
    ("Let me think.\n\nB\n", CAPITALS, "answered", "B", "lone-letter"),
    ("C is the correct answer.", CAPITALS, "answered", "C", "letter-is-correct"),
    ("Looking at each choice, option D is correct.",
     CAPITALS, "answered", "D", "letter-is-correct"),
    ("Neither A nor B is correct, and C is wrong too, so D is correct.", CAPITALS, "answered", "D",
     "letter-is-correct"),
    # last stated answer wins over letters mentioned along the way
    ("A is wrong because Paris is in France, B is tempting but London is in England, so the "
     "answer is D.", CAPITALS, "answered", "D", "answer-is"),
    ("At first I thought the answer is B. But wait, London is the capital of England, so the "
     "answer is actually... The answer is C.", CAPITALS, "answered", "C", "answer-is"),
    ("The answer is B. Option A is wrong because the nucleus stores DNA.", CELL, "answered", "B",
     "answer-is"),
    ("(A) is too small. (B) is still too small. (D) is too big. So (C).", FIVE, "answered", "C",
     "conclusion"),
    ("Answer: E", FIVE, "answered", "E", "answer-colon"),
    ("The correct answer is **B**.", CAPITALS, "answered", "B", "answer-is"),
    ("**Answer: (B) London**", CAPITALS, "answered", "B", "answer-colon"),
    (r"Therefore, the answer is $\boxed{\text{(B)}}$.", CAPITALS, "answered", "B", "answer-is"),
    ("A) Paris\nB) London\nC) Berlin\nD) Madrid\n\nThe correct answer is C) Berlin", CAPITALS,
     "answered", "C", "answer-is"),
    ("Answer:\n\nD", CAPITALS, "answered", "D", "answer-colon"),
    # an option by its position, where options are not numbers themselves
    ("I think it's the second one.", CAPITALS, "answered", "B", "option-number"),
    ("The answer is option 3.", CAPITALS, "answered", "C", "answer-option-number"),
    ("Option 3", FIVE, "unparseable", None, "no-rule-matched"),
    # the answer repeats the option text instead of a letter
    ("Berlin", CAPITALS, "answered", "C", "option-text"),
    ("The answer is Madrid.", CAPITALS, "answered", "D", "answer-option-text"),
    ("Answer: the mitochondria", CELL, "answered", "B", "answer-option-text"),
    ("The powerhouse of the cell is the mitochondria.", CELL, "answered", "B", "option-text"),
    ("The print was made just after the invention of the zoopraxiscope.", ART, "answered", "D",
     "option-text"),
    ("The answer is 12.", FIVE, "answered", "E", "answer-option-text"),
    (RAMBLE_135M, CAPITALS, "answered", "A", "option-text"),
    # tiny-model replies with no usable answer
    (ECHO_135M, CAPITALS, "unparseable", None, "no-rule-matched"),
    ("Paris and London are both big cities, and Berlin is also big.", CAPITALS, "unparseable",
     None, "no-rule-matched"),
    ("A) Paris\nB) London\nC) Berlin\nD) Madrid", CAPITALS, "unparseable", None,
     "no-rule-matched"),
    ("[A] Paris [B] London [C] Berlin [D] Madrid\nThe capital is a big city.", CAPITALS,
     "unparseable", None, "no-rule-matched"),
    ("The capital of France is a city. The city is a capital. The capital is a city.", CAPITALS,
     "unparseable", None, "no-rule-matched"),
    ("Question: What is the capital of France?\nQuestion: What is the capital of France?\n"
     "Question: What is the capital of France?", CAPITALS, "unparseable", None, "no-rule-matched"),
    ("The cell is the basic unit of life. It has many parts.", CELL, "unparseable", None,
     "no-rule-matched"),
    ("The answer is either B or C.", CAPITALS, "unparseable", None, "no-rule-matched"),
    # the English words "a" and "I", and "A" starting a sentence, are not answers
    ("A triangle has three sides, so the sum of its angles is 180 degrees.", TRIANGLE,
     "unparseable", None, "no-rule-matched"),
    ("I think this is a hard question and I am not sure.", CAPITALS, "unparseable", None,
     "no-rule-matched"),
    ("The answer is a little tricky to find.", CAPITALS, "unparseable", None, "no-rule-matched"),
    ("The answer is: A city in Europe with many museums.", CAPITALS, "unparseable", None,
     "no-rule-matched"),
    ("Let $A$ be the area of the square. Then $A = 16$.", FIVE, "unparseable", None,
     "no-rule-matched"),
    ("This is a question about a city.", CAPITALS, "unparseable", None, "no-rule-matched"),
    # letters beyond the options are not valid
    ("Answer: F", FIVE, "unparseable", None, "no-rule-matched"),
    ("The answer is E.", CAPITALS, "unparseable", None, "no-rule-matched"),
    # empty and refusals
    ("", CAPITALS, "empty", None, "empty"),
    ("   \n\t ", CAPITALS, "empty", None, "empty"),
    ("I cannot answer this question.", CAPITALS, "refused", None, "refusal"),
    ("I'm sorry, but I can't help with that.", CAPITALS, "refused", None, "refusal"),
    ("Since there is no graph provided, we cannot determine the correct answer.", FIVE,
     "refused", None, "refusal"),
    ("No figure is provided, so it is impossible to determine the angle.", TRIANGLE, "refused",
     None, "refusal"),
    ("As an AI language model, I do not have opinions about art.", ART, "refused", None,
     "refusal"),
    ("I'm sorry, I am not sure, but I think the answer is B.", CAPITALS, "answered", "B",
     "answer-is"),
]


@pytest.mark.parametrize(("reply", "options", "status", "answer", "how"), CHOICE_CASES)
def test_extract_choice(reply: str, options: list[str], status: str, answer: str | None,
                        how: str) -> None:
    got = extract_choice(reply, options)
    assert (got.status, got.answer, got.how) == (status, answer, how)


MULTI_CASES: list[tuple[str, str | None, str]] = [
    ("The answers are A, C and D.", "ACD", "answer-is"),
    ("Answer: A, C, D", "ACD", "answer-colon"),
    ("The answer is therefore [A][C]", "AC", "answer-is-therefore"),
    ("Answer: D, B", "BD", "answer-colon"),
    ("Correct answers: B and E", "BE", "answer-colon"),
    ("A, C and D", "ACD", "bare-letter"),
    ("[B][D]", "BD", "bare-letter"),
    ("Answer: ACD", "ACD", "answer-colon"),
    ("Answer: C", "C", "answer-colon"),
    ("Statements A and C hold, while B fails.\nFinal answer: A, C", "AC", "answer-colon"),
    ("None of these look right to me.", None, "no-rule-matched"),
]


@pytest.mark.parametrize(("reply", "answer", "how"), MULTI_CASES)
def test_extract_multi_select(reply: str, answer: str | None, how: str) -> None:
    got = extract_choice(reply, ["p", "q", "r", "s", "t"], multi=True)
    assert (got.answer, got.how) == (answer, how)


def test_multi_letters_in_single_choice_are_not_an_answer() -> None:
    assert extract_choice("Answer: A, C", CAPITALS).status == "unparseable"


TIER_CASES: list[tuple[str, str]] = [
    # strict: the reply states its answer
    ("The answer is therefore [C]", "strict"),
    ("C", "strict"),
    ("答案是C", "strict"),
    ("So B.", "strict"),
    ("The answer is B. Wait, actually, it's C.", "strict"),
    # loose: inferred from a mark or the option text; letter_if_needed asks for the letter
    ("Berlin (C) has been the capital since 1990, and Bonn before it.", "loose"),
    ("The capital of reunified Germany is Berlin.", "loose"),
    ("**C**\n\nBerlin has been the capital since 1990.", "loose"),
]


@pytest.mark.parametrize(("reply", "tier"), TIER_CASES)
def test_tier_says_whether_the_answer_was_stated(reply: str, tier: str) -> None:
    assert extract_choice(reply, CAPITALS).tier == tier


def test_refused_and_unparseable_carry_no_tier() -> None:
    assert extract_choice("I cannot answer this question.", CAPITALS).tier is None
    assert extract_choice("Hard to say.", CAPITALS).tier is None


def test_hedged_answer_is_an_answer_not_a_refusal() -> None:
    got = extract_choice("I can't be certain, but the answer is likely C", CAPITALS)
    assert (got.status, got.answer) == ("answered", "C")


NUMERIC_TIERS = [("The answer is 12.", "strict"), (r"$\boxed{12}$", "strict"), ("x = 12", "loose"),
                 ("We add 5 and 7 to get 12", "loose")]


@pytest.mark.parametrize(("reply", "tier"), NUMERIC_TIERS)
def test_numeric_tiers(reply: str, tier: str) -> None:
    assert extract_numeric(reply).tier == tier


NUMERIC_CASES: list[tuple[str, str | None, str]] = [
    ("3/4", "0.75", "numeric-last"),
    ("The answer is .75", "0.75", "answer-is"),
    ("About 1,250 people attended, so the answer is 1,250.", "1250", "answer-is"),
    ("The temperature fell to -5 degrees.", "-5", "numeric-last"),
    ("The answer is −12.5", "-12.5", "answer-is"),
    ("That is an increase of 75%.", "75", "numeric-last"),
    (r"The answer is $\frac{3}{4}$.", "0.75", "answer-is"),
    (r"So $x = \dfrac{2}{3}$", "2/3", "variable-equals"),
    ("x = 12", "12", "variable-equals"),
    ("2x + 3 = 27, so x = 12. Check: 2(12) + 3 = 27.", "12", "variable-equals"),
    ("First 4 + 5 = 9, then 9 * 2 = 18. The answer is 18. Note 18 > 10.", "18", "answer-is"),
    (r"Adding the areas gives 6 + 8 = 14. $\boxed{14}$", "14", "answer-is"),
    ("Answer: 0.5", "0.5", "answer-is"),
    ("The answer is 6/8.", "0.75", "answer-is"),
    ("Step 1: 3 apples. Step 2: 5 pears. Total 8 fruits.", "8", "numeric-last"),
    ("The answer is 7.50 dollars.", "7.5", "answer-is"),
    ("", None, "empty"),
    ("I don't know how to do this problem.", None, "no-rule-matched"),
    ("Without the graph I cannot determine the slope.", None, "refusal"),
]


@pytest.mark.parametrize(("reply", "answer", "how"), NUMERIC_CASES)
def test_extract_numeric(reply: str, answer: str | None, how: str) -> None:
    got = extract_numeric(reply)
    assert (got.answer, got.how) == (answer, how)


MATCH_CASES: list[tuple[str, list[str | float], float, bool]] = [
    ("0.75", ["3/4"], 0, True),
    ("3/4", [".75"], 0, True),
    ("1250", ["1,250"], 0, True),
    ("0.667", ["2/3"], 0.001, True),
    ("0.66", ["2/3"], 0.001, False),
    ("0.666", ["2/3", ".666", ".667"], 0, True),
    ("-5", [-5.0], 0, True),
    ("5", [-5.0], 0, False),
    ("12", [12.0, "13"], 0, True),
    ("3.14", [3.14159], 0.01, True),
    ("not a number", ["1"], 0, False),
    ("1/0", ["1"], 0, False),
]


@pytest.mark.parametrize(("answer", "accepted", "tolerance", "expected"), MATCH_CASES)
def test_numeric_matches(answer: str, accepted: list[str | float], tolerance: float,
                         expected: bool) -> None:
    assert numeric_matches(answer, accepted, tolerance) is expected


def test_parse_number_rejects_garbage() -> None:
    assert parse_number("12 apples") is None
    assert parse_number("1,250") == 1250


def test_letters() -> None:
    assert letters(4) == ["A", "B", "C", "D"]
    assert letters(0) == []
    with pytest.raises(ValueError):
        letters(27)


def test_extraction_is_frozen_model() -> None:
    got = extract_choice("Answer: B", CAPITALS)
    assert isinstance(got, Extraction)
    assert Extraction.model_validate_json(got.model_dump_json()) == got
