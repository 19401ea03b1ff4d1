"""Reading a typed answer to the guide's question, for that question (tuanjian/backend/guide/answers.yml).

The guide never reads "yes" or "no" from the intent of a whole message: the
phrases of the question asked decide, a negation right before a phrase turns
it round, and an age or a birth year answers the age question. Anything else
(both answers at once, "不知道", nothing recognisable) is no answer, and the
guide asks again instead of drawing a conclusion from it.
"""
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

ANSWERS_FILE = Path(__file__).with_name("answers.yml")
DONT_KNOW = "dont_know"
Reading = bool | str | None  # True / False, DONT_KNOW, or None: not an answer

# How far before a phrase a past or future marker still counts ("以前是团支书",
# "还差两个月满28"), not across punctuation; a negation must end right before it.
MARKER_REACH = 6
MAX_BARE_AGE = 60
_PUNCTUATION = re.compile(r"[,，。.!！?？;；、\s]")
_FILLER = re.compile(r"[啊呀哦噢呢了的哈啦喔~～,，。.!！?？;；、\s]+")
_AGE = re.compile(r"(?<![0-9])([1-9][0-9])\s*(?:周岁|岁)|今年\s*([1-9][0-9])(?![0-9年])")
_CHINESE_AGE = re.compile(r"([一二三四五六七八九]?十[一二三四五六七八九]?)\s*(?:周岁|岁)")
_BIRTH_YEAR = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2}|[0-9]{2})\s*年?\s*(?:出生|生人|生的|生)"
                         r"|(?<![0-9])((?:19|20)[0-9]{2}|[0-9]{2})\s*年(?:的|$)")
_QUESTION = re.compile(r"[^,，。.!！;；、?？\s]*(?:吗[?？]*|[?？]+)")
_BARE_NUMBER = re.compile(r"^([1-9][0-9])$")
_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")}


def chinese_number(text: str) -> int:
    """十 → 10, 二十九 → 29, 三十 → 30 (only what ages need)."""
    tens, _, ones = text.partition("十")
    return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0)


@dataclass(frozen=True)
class AnswerReader:
    questions: dict[str, dict[bool, list[str]]]
    bare: dict[str, dict[bool, list[str]]]
    dont_know: tuple[str, ...]
    hedge_suffix: str
    negations: tuple[str, ...]
    past_markers: tuple[str, ...]
    future_markers: tuple[str, ...]

    def read(self, fact: str, text: str, this_year: int, age_limit: int, asked: bool = True) -> Reading:
        """The answer `text` (normalised) gives to the question about `fact`; a bare
        "是"/"没有" counts only when that question was `asked`, and so do the
        age phrases without the number ("满了")."""
        if fact not in self.questions:
            return None
        text = _QUESTION.sub(" ", text)  # "满28了吗？还没": the echoed question says nothing
        if self.unsure(text):
            return DONT_KNOW
        found, rest = self._phrase_values(fact, text, asked)
        values = set(found)
        if fact == "over_28":  # the numbers the phrases did not already say ("未满28周岁")
            values |= set(self._age_values(rest, this_year, age_limit, asked))
        if len(values) > 1 or None in values:
            return None  # both at once, the past, or a double negation: ask again
        if values:
            return values.pop()
        if not asked:
            return None
        bare = _FILLER.sub("", text)
        for value in (True, False):
            if bare in self.bare[fact][value]:
                return value
        return None

    def unsure(self, text: str) -> bool:
        """Whether the member says they do not know, or hedges ("好像有", "有的吧")."""
        return any(phrase in text for phrase in self.dont_know) \
            or _FILLER.sub("", text).endswith(self.hedge_suffix)

    def _phrase_values(self, fact: str, text: str, asked: bool) -> tuple[list[bool | None], str]:
        """Each phrase of the question found (longest first, not overlapping) and
        what it says: turned round by a negation right before it (None for a
        negated "no" phrase), None after a past marker, False after a future one
        ("快满28了"); and the text with those phrases blanked out."""
        phrases = sorted(((p, v) for v, ps in self.questions[fact].items() for p in ps
                          if asked or fact != "over_28" or "28" in p),
                         key=lambda item: -len(item[0]))
        taken = [False] * len(text)
        found: list[tuple[int, bool | None]] = []
        for phrase, value in phrases:
            for match in re.finditer(re.escape(phrase), text):
                start, end = match.span()
                if any(taken[start:end]):
                    continue
                taken[start:end] = [True] * (end - start)
                before = _PUNCTUATION.split(text[max(0, start - MARKER_REACH):start])[-1]
                found.append((start, self._meaning(value, before)))
        rest = "".join(" " if used else char for char, used in zip(text, taken, strict=False))
        return [value for _, value in sorted(found)], rest

    def _meaning(self, value: bool, before: str) -> bool | None:
        if any(before.endswith(n) for n in self.negations):
            return not value if value else None
        if value and any(m in before for m in self.past_markers):
            return None
        if value and any(m in before for m in self.future_markers):
            return False
        return value

    @staticmethod
    def _age_values(text: str, this_year: int, age_limit: int, asked: bool) -> list[bool | None]:
        ages = [int(a or b) for a, b in _AGE.findall(text)]
        ages += [chinese_number(n) for n in _CHINESE_AGE.findall(text)]
        bare = _BARE_NUMBER.match(_FILLER.sub("", text))
        if bare and asked:
            age = int(bare.group(1))
            # "98" alone may be a birth year as well as an age: only plausible ages count.
            ages += [age] if age <= MAX_BARE_AGE else []
        values: list[bool | None] = [age >= age_limit for age in ages]
        for first, second in _BIRTH_YEAR.findall(text):
            year = int(first or second)
            if year < 100:
                year += 1900 if year >= 30 else 2000
            values.append(over_limit_by_birth_year(year, this_year, age_limit))
        return values


def over_limit_by_birth_year(birth_year: int, this_year: int, age_limit: int) -> bool | None:
    """Whether someone born in `birth_year` has reached `age_limit`; None for those
    who reach it this year (whether the birthday has passed is not known)."""
    turns = this_year - birth_year
    return None if turns == age_limit else turns > age_limit


@cache
def load_answers(path: Path = ANSWERS_FILE) -> AnswerReader:
    data = yaml.safe_load(path.read_text("utf-8"))
    questions, bare = {}, {}
    for fact, phrases in data["questions"].items():
        questions[fact] = {True: phrases["yes_phrases"], False: phrases["no_phrases"]}
        bare[fact] = {True: data["bare_yes"] + phrases.get("bare_yes", []),
                      False: data["bare_no"] + phrases.get("bare_no", [])}
    return AnswerReader(questions, bare, tuple(data["dont_know"]), data["hedge_suffix"],
                        tuple(data["negations"]), tuple(data["past_markers"]), tuple(data["future_markers"]))
