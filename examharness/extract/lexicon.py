"""The words answers are stated (and rejected) with, per language, as regular-expression fragments.

Languages: English plus the 26 of the GPT-4 report's multilingual MMLU (Section 4, Appendix F:
Italian, Afrikaans, Spanish, German, French, Indonesian, Russian, Polish, Ukrainian, Greek,
Latvian, Mandarin, Arabic, Turkish, Japanese, Swahili, Welsh, Korean, Icelandic, Bengali, Urdu,
Nepali, Thai, Punjabi, Marathi, Telugu) and Portuguese and Dutch. The report kept the ``Answer``
token and the letters A-D in English, so only the words around the letter change. Every fragment
is compiled once, in :mod:`examharness.extract.rules`; this module holds data only.

``ANSWER_CUES`` (rule name -> fragment): an explicit statement that the letter that follows is the
answer ("The answer is", "答案是", "Ответ:"). ``LETTER_IS_RIGHT``: what follows a letter that is
being chosen ("C is correct", "C是正确的", "Cが正解"). ``REJECT_AFTER`` / ``REJECT_BEFORE``:
words that make a letter rejected rather than chosen ("C is wrong", "not C", "eliminate A").
"""

from __future__ import annotations

_COPULA = (
    r"(?:is|are|was|would\s+be|should\s+be|must\s+be|will\s+be|has\s+to\s+be|seems\s+to\s+be"
    r"|appears\s+to\s+be|becomes|remains)"
)
_EN_NOUN = r"(?:answer|choice|option|response|selection|pick|letter|solution)s?"

ANSWER_CUES: dict[str, str] = {
    "answer-is-therefore": r"(?i:\banswers?\s+(?:is|are)\s+therefore)",
    "answer-is": rf"(?i:\b{_EN_NOUN}(?:\s+(?:here|then|now|(?:to|for|in)\s+(?:this|the)\s+"
    rf"(?:question|problem|item)))?\s+{_COPULA})",
    "answer-colon": r"(?i:\b(?:final\s+|correct\s+|best\s+|right\s+|my\s+)?"
    r"(?:answer|choice|option|response|solution|selection)s?(?:\s*\(s\))?[*_]*[ \t]*"
    r"(?:[:=\-–—→]|=>|(?=\n)))",
    "my-answer": r"(?i:\bi(?:'d|\s+would|'ll|\s+will|\s+shall|'m|\s+am)?\s+(?:going\s+to\s+)?"
    r"(?:go(?:ing)?\s+(?:with|for)|choose|chose|pick|select|say|opt\s+for|answer|mark))",
    "boxed": r"\\boxed\s*\{",
    "answer-zh": r"(?:(?:正确|正確|最终|最終|标准|標準|参考|參考)?(?:答案|选项|選項)"
    r"(?:应该|應該|应|應|就|即|则|則)?(?:是|为|為|选|選|：|:)"
    r"|(?:故|应|應|所以|因此|因而|综上|綜上|故而|我)(?:选|選)(?:择|擇)?)",
    "answer-ja": r"(?:正解|答え|解答|回答|正しい(?:答え|選択肢))(?:は|：|:|が)",
    "answer-ko": r"(?:정답|답|올바른\s*답)(?:은|는)?\s*[:：]?",
    "answer-es": r"(?i:\b(?:la\s+)?(?:respuesta|opci[oó]n|alternativa)(?:\s+(?:correcta|final|adecuada))?"
    r"\s*(?:es|ser[ií]a|:))",
    "answer-pt": r"(?i:\b(?:a\s+)?(?:resposta|alternativa)(?:\s+(?:correta|certa|final))?\s*(?:é|seria|:))",
    "answer-fr": r"(?i:\br[ée]ponse(?:\s+(?:correcte|finale|juste|exacte))?\s*(?:est|serait|:)"
    r"|\boption\s+correcte\s+est)",
    "answer-de": r"(?i:\b(?:antwort|l[öo]sung)(?:\s+(?:ist|lautet|w[äa]re))?\s*:?"
    r"|\brichtig\s+ist)",
    "answer-it": r"(?i:\brisposta(?:\s+(?:corretta|giusta|esatta|finale))?\s*(?:è|e'|sarebbe|:))",
    "answer-nl": r"(?i:\b(?:het|die)\s+(?:juiste\s+|korrekte\s+|regte\s+)?antwoord\s+(?:is|:)"
    r"|\bantwoord\s*:)",
    "answer-ru": r"(?i:(?:ответ|відповідь)\s*(?:[:—–-]|это|будет|це)?)",
    "answer-pl": r"(?i:\bodpowied[źz](?:\s+(?:poprawna|prawidłowa))?\s*(?:to|:|—|-))",
    "answer-tr": r"(?i:\b(?:do[ğg]ru\s+)?(?:cevap|yan[ıi]t)(?:\s+(?:şudur|budur))?\s*:?)",
    "answer-id": r"(?i:\bjawaban(?:nya)?(?:\s+yang\s+(?:benar|tepat))?\s*(?:adalah|ialah|:))",
    "answer-sw": r"(?i:\bjibu(?:\s+(?:sahihi|sahihi\s+ni|ni))?\s*(?:ni|:)?)",
    "answer-el": r"(?i:απάντηση\s*(?:είναι|:))",
    "answer-lv": r"(?i:\batbilde\s*(?:ir|:))",
    "answer-isl": r"(?i:\bsvar(?:i[ðd])?\s*(?:er|:))",
    "answer-cy": r"(?i:\bateb(?:\s+cywir)?\s*(?:yw|ydy|:))",
    "answer-ar": r"(?:الإجابة|الاجابة|الجواب|جواب)(?:\s+(?:الصحيحة|الصحيح|درست|صحیح))?\s*(?:هي|هو|ہے|:)?",
    "answer-hi": r"(?:उत्तर|जवाब|उत्तरः)\s*(?:है|:|हे|आहे|हो)?",
    "answer-bn": r"উত্তর\s*(?:হলো|হল|:)?",
    "answer-pa": r"(?:ਉੱਤਰ|ਜਵਾਬ)\s*(?:ਹੈ|:)?",
    "answer-te": r"సమాధానం\s*:?",
    "answer-th": r"คำตอบ(?:ที่ถูกต้อง)?\s*(?:คือ|:)?",
}
"""Cue -> fragment; the letter must follow (after quotes, markdown, "option", "likely", ...)."""

CUE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "answer-is-therefore": ("answer",),
    "answer-is": ("answer", "choice", "option", "response", "selection", "pick", "letter", "solution"),
    "answer-colon": ("answer", "choice", "option", "response", "solution", "selection"),
    "my-answer": (
        "go with",
        "going with",
        "go for",
        "choose",
        "chose",
        "pick",
        "select",
        "say",
        "opt for",
        "answer",
        "mark",
    ),
    "boxed": ("\\boxed",),
    "answer-zh": ("答案", "选项", "選項", "选", "選"),
    "answer-ja": ("正解", "答え", "解答", "回答", "正しい"),
    "answer-ko": ("답",),
    "answer-es": ("respuesta", "opción", "opcion", "alternativa"),
    "answer-pt": ("resposta", "alternativa"),
    "answer-fr": ("réponse", "reponse", "option correcte"),
    "answer-de": ("antwort", "lösung", "losung", "richtig ist"),
    "answer-it": ("risposta",),
    "answer-nl": ("antwoord",),
    "answer-ru": ("ответ", "відповідь"),
    "answer-pl": ("odpowied",),
    "answer-tr": ("cevap", "yanıt", "yanit"),
    "answer-id": ("jawab",),
    "answer-sw": ("jibu",),
    "answer-el": ("απάντηση",),
    "answer-lv": ("atbilde",),
    "answer-isl": ("svar",),
    "answer-cy": ("ateb",),
    "answer-ar": ("الإجابة", "الاجابة", "الجواب", "جواب"),
    "answer-hi": ("उत्तर", "जवाब"),
    "answer-bn": ("উত্তর",),
    "answer-pa": ("ਉੱਤਰ", "ਜਵਾਬ"),
    "answer-te": ("సమాధానం",),
    "answer-th": ("คำตอบ",),
}
"""Words one of which a lower-cased reply must contain for the cue's pattern to be tried at all:
a substring test costs far less than a regular-expression scan, and most replies hold one cue."""

CONCLUSION = (
    r"(?i:\b(?:so|thus|therefore|hence|consequently|overall|finally|ergo|in\s+conclusion"
    r"|in\s+summary|in\s+short|to\s+conclude|final\s+verdict|verdict"
    r"|leaves(?:\s+us\s+with)?(?:\s+only)?|leaving(?:\s+only)?|only\s+remaining\s+(?:option|choice)\s+is)"
    r"|所以|因此|故|综上所述|綜上所述|したがって|よって|따라서|그러므로"
    r"|(?i:\bpor\s+lo\s+tanto|\bpor\s+tanto|\bdonc|\bdaher|\balso|\bquindi|\bportanto"
    r"|\bпоэтому|\bитак|\bотже|\bdlatego|\bbu\s+yüzden|\bjadi|\bkwa\s+hiyo))"
)
"""Connectives that close reasoning: "So B.", "Therefore, (C).", "所以B"."""
CONCLUSION_AT = (
    "so",
    "thus",
    "therefore",
    "hence",
    "consequently",
    "overall",
    "finally",
    "ergo",
    "in",
    "to conclude",
    "final",
    "verdict",
    "leaves",
    "leaving",
    "only",
    "所以",
    "因此",
    "故",
    "综上所述",
    "綜上所述",
    "したがって",
    "よって",
    "따라서",
    "그러므로",
    "por",
    "donc",
    "daher",
    "also",
    "quindi",
    "portanto",
    "поэтому",
    "итак",
    "отже",
    "dlatego",
    "bu",
    "jadi",
    "kwa",
)
"""Where a :data:`CONCLUSION` connective can start (what :mod:`~examharness.extract.rules` looks for)."""

CORRECTION = (
    r"(?i:\b(?:actually|wait|no|rather|correction|i\s+mean|make\s+that|scratch\s+that"
    r"|on\s+second\s+thought|on\s+reflection|let\s+me\s+correct))"
)
"""Self-corrections: the letter after them replaces what came before."""
CORRECTION_AT = (
    "actually",
    "wait",
    "no",
    "rather",
    "correction",
    "i mean",
    "make that",
    "scratch",
    "second thought",
    "reflection",
    "let me correct",
)

COPULA_PRONOUN = (
    r"(?i:\b(?:it|that|this)(?:'s|’s|\s+is|\s+must\s+be|\s+would\s+be|\s+has\s+to\s+be"
    r"|\s+should\s+be)|\bi\s+think\s+it(?:'s|’s|\s+is)|\bmy\s+guess\s+is)"
)
"""Pronoun statements, accepted only when the letter ends the clause: "It's (a).", "It is D."."""

LETTER_IS_RIGHT = (
    r"(?:(?i:\s+(?:is|would\s+be|must\s+be|seems|appears)\s+(?:the\s+)?(?:only\s+)?"
    r"(?:correct|right|best|better\s+(?:answer|choice|option)|true\s+answer|answer\b|correct\s+answer"
    r"|right\s+answer|best\s+answer)|\s+is(?=[.!](?:\s|\Z))|\s*(?:✓|✔|✅))"
    r"|\s*(?:项|項)?\s*(?:是|为|為)?\s*(?:正确|正確|对的|對的|正确答案|正確答案)"
    r"|\s*(?:が|は)\s*(?:正解|正しい)"
    r"|\s*(?:가|이|는|은)?\s*(?:정답|맞)"
    r"|(?i:\s+(?:es|est|ist|è|é|jest|is)\s+(?:la\s+|le\s+|die\s+|a\s+)?(?:correcta|correcte|richtig|korrekt"
    r"|corretta|correta|poprawna|bonne\s+r[ée]ponse|respuesta\s+correcta|richtige\s+antwort))"
    r"|(?i:\s*[—–-]?\s*(?:правильн|верн))"
    r"|\s+(?:هي|هو)?\s*(?:الصحيحة|الصحيح)"
    r"|\s+सही\b)"
)

RIGHT_AT = (
    "correct",
    "right",
    "best",
    "better",
    "answer",
    "✓",
    "✔",
    "✅",
    "正确",
    "正確",
    "对的",
    "對的",
    "正解",
    "正しい",
    "정답",
    "맞",
    "richtig",
    "korrekt",
    "corrett",
    "corret",
    "poprawn",
    "bonne",
    "правильн",
    "верн",
    "الصحيح",
    "सही",
    " is.",
    " is!",
)
"""Words inside :data:`LETTER_IS_RIGHT`, where a "C is correct" statement can be found."""

_EN_WRONG = (
    r"wrong|incorrect|false|untrue|inaccurate|invalid|implausible|unlikely|irrelevant|flawed"
    r"|a\s+(?:common\s+)?(?:wrong|incorrect|trap|distractor)|a\s+trap|a\s+distractor|out\b"
    r"|eliminated|ruled\s+out|excluded|discarded|no\s+longer|fails?\b"
    r"|too\s+(?:small|large|big|low|high|early|late|narrow|broad)"
)
REJECT_AFTER = (
    rf"(?i:^[\])*_\s]*(?:(?:is|are|was|were|does|do|can|could|would|should|must|will|also|clearly"
    rf"|definitely|certainly|obviously|therefore|thus|then|probably|likely|simply|just|here)\s+)+"
    rf"(?:not|never)\b(?!\s+only)"
    rf"|^[\])*_\s]*(?:cannot|can't|isn't|aren't|wasn't|doesn't|won't|wouldn't|never)\b"
    rf"|^[\])*_\s]*(?:\s*(?:is|are|was|were|would\s+be|seems|looks|appears|can\s+be|could\s+be"
    rf"|must\s+be|should\s+be|also|both|all|clearly|definitely|certainly|obviously|therefore|thus"
    rf"|then|probably|likely|simply|just|too|again|here|still|even|far|way|much)\b)*\s*(?:{_EN_WRONG})"
    r"|^[^.;!?\n]{0,60}?\b(?:is|are|was|would\s+be|seems)\s+(?:\w+\s+)?(?:wrong|incorrect|false|not\s+(?:correct|right|the))"
    r"|^[^.;!?\n]{0,40}?\b(?:can|could|must|should)\s+be\s+(?:eliminated|ruled\s+out|excluded|discarded))"
    r"|^[^.;!?\n]{0,50}?[:—–-]\s*(?i:no|false|wrong|incorrect|not\s+correct)\b|^[^.;!?\n]{0,50}?(?:❌|✗|✘)"
    r"|^[\])*_\s]*(?:项|項)?\s*(?:是)?\s*(?:错|錯|不正确|不正確|不对|不對|不是|排除|有误|不符)"
    r"|^[\])*_\s]*(?:は|が)?\s*(?:誤り|間違|正しくない|ではない|不正解|除外)"
    r"|^[\])*_\s]*(?:는|은|가|이)?\s*(?:틀|오답|아니|제외|잘못)"
    r"|(?i:^[\])*_\s]*(?:es|est|ist|è|é|jest|is|n'est|no\s+es|não\s+é|non\s+è)?\s*(?:la\s+|die\s+)?"
    r"(?:incorrect[ae]?|fals[ae]|faux|fausse|erróne[ao]|falsch|inkorrekt|sbagliat[ao]|errat[ao]"
    r"|errad[ao]|pas\b|nicht|no\s+es|não|non|nie\b|descartad[ao]|éliminée?|ausgeschlossen))"
    r"|(?i:^[\])*_\s]*[—–-]?\s*(?:неверн|неправильн|не\s|ошибочн|исключ|невірн|неправильн))"
    r"|^[\])*_\s]*(?:خاطئ|خطأ|ليس|غير\s+صحيح|غلط)"
    r"|^[\])*_\s]*(?:गलत|ग़लत|नहीं)"
)
"""Right after a letter (or an option's text): the option is being rejected."""

REJECT_BEFORE = (
    r"(?i:\b(?:not|isn't|aren't|never|nor|neither|rather\s+than|instead\s+of|except|other\s+than"
    r"|besides|against|wrong|incorrect)\b[^.;:!?\n]{0,16}$)"
    r"|(?i:\b(?:eliminat\w*|rul(?:e|es|ed|ing)\s+out|exclud\w*|reject\w*|discard\w*|cross(?:ed|ing)?\s+out"
    r"|if|whether|unless|suppose|supposing|assum\w*|don't|do\s+not|doesn't|does\s+not|didn't|can't"
    r"|cannot|won't|wouldn't|mistake\w*|tempting|might|may|could|some|people|students|others|naively"
    r"|wrongly|incorrectly|falsely|mistakenly|doubt\w*)\b[^.;:!?\n]{0,30}$)"
    r"|(?:不是|不选|不選|排除|并非|並非|而非)[^。；！？\n]{0,12}$"
    r"|(?i:(?:\bno\s+es|\bn'est\s+pas|\bnicht|\bне|ليس|नहीं|아닌)\s[^.;!?\n]{0,12}$)"
)
"""Shortly before a letter in the same clause: the letter is negated, hypothetical or ruled out."""

CLAUSE_END = (
    r"[.;!?\n。；！？]|,(?!\s*(?:and\s+)?[\[(]?[A-Z]\b)"
    r"|(?i:\s(?:because|since|but|however|while|whereas|although|though|so|thus|hence"
    r"|therefore|leaving|leaves)\b)"
)
"""Where the clause after a letter ends (for :data:`REJECT_AFTER`)."""

CLAUSE_START = (
    r"[.;:!?\n。；！？]|(?i:\b(?:but|however|though|although|yet|so|thus|therefore|hence"
    r"|actually|instead)\b)|,\s*(?i:(?:but|so|and\s+so)\b)?"
)
"""Where the clause before a letter starts (for :data:`REJECT_BEFORE`)."""

FILLER_WORDS = (
    r"(?i:option|choice|letter|alternative|opci[oó]n|choix|variante|вариант|варіант"
    r"|likely|probably|most\s+likely|clearly|definitely|certainly|obviously|simply|indeed"
    r"|actually|therefore|thus|hence|in\s+fact|still|then|correct|right|best|final|the"
    r"|answer|just|ultimately|undoubtedly|surely|also|now)"
)
"""Words allowed between a cue and its letter: "the answer is most likely option C"."""

REFUSAL = (
    r"(?i)\bi\s*(?:cannot|can't|can\s+not|am\s+unable|'m\s+unable|am\s+not\s+able)\b"
    r"|\bi(?:'m|\s+am)\s+sorry\b|\bas\s+an\s+ai\b"
    r"|\b(?:cannot|can't|unable\s+to|not\s+possible\s+to|impossible\s+to)\s+(?:be\s+)?determine"
    r"|\bno\s+(?:graph|figure|image|diagram|picture|table|passage|map|chart)s?\s+(?:is\s+|was\s+)?"
    r"(?:provided|given|shown|included)|\bnot\s+enough\s+information\b"
    r"|无法(?:回答|确定|判断)|無法(?:回答|確定|判斷)|答えられません|回答できません|답할\s*수\s*없"
    r"|\bno\s+puedo\b|\bje\s+ne\s+peux\s+pas\b|\bich\s+kann\s+(?:\w+\s+)?nicht\b|\bне\s+могу\b"
    r"|لا\s+أستطيع|मैं\s+(?:\S+\s+)?नहीं\s+(?:कर\s+)?सकता"
)
"""A reply that declines ("I cannot answer", "no figure is provided"), read only when no answer
was found: "I can't be certain, but the answer is likely C" is an answer."""
