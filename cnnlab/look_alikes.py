"""Look-alike letters folded into one, so that "Аda" (Cyrillic А) and "Ada" are the same name.

NFKC folds compatibility forms ("Ａｄａ" is "Ada") but keeps letters of other scripts that look the
same: Cyrillic "А", Greek "Α" and Latin "A" stay three letters. Unicode's confusables table (UTS #39,
"Unicode Security Mechanisms") lists which characters look alike; `confusable_homoglyphs` ships it
as data. `skeleton` maps each character to one member of its look-alike class (its ASCII member
when it has one: "А", "Α" and "Ꭺ" become "A"; "1", "I" and "l" become "1"), which is what the
standard's skeleton does, restricted to look-alikes of one character each (a multi-character
look-alike such as "rn" for "m" is not folded: "Arnie" and "Amie" stay two names).
"""

from __future__ import annotations

import functools
import unicodedata

from confusable_homoglyphs import confusables


@functools.cache
def _representatives() -> dict[str, str]:
    """Each character of the confusables table to its class's smallest code point (an ASCII one if any)."""
    parent: dict[str, str] = {}

    def root(character: str) -> str:
        parent.setdefault(character, character)
        while parent[character] != character:
            parent[character] = parent[parent[character]]
            character = parent[character]
        return character

    for character, look_alikes in confusables.confusables_data.items():
        if len(character) != 1:
            continue
        for look_alike in look_alikes:
            other = str(look_alike["c"])
            if len(other) == 1:
                first, second = root(character), root(other)
                if first != second:
                    parent[max(first, second)] = min(first, second)
    return {character: root(character) for character in parent}


def skeleton(text: str) -> str:
    """`text` with compatibility forms, case and look-alike letters folded: equal skeletons look alike.

    NFKC; each character to its look-alike class's representative; then the same after case-folding,
    and again after upper-casing: "Αlan" (Greek Α) and "ALAN" meet in capitals, "B0b" and "Bob" too
    ("0" looks like "O", not like "o").
    """
    representatives = _representatives()

    def folded(characters: str) -> str:
        return "".join(representatives.get(character, character) for character in characters)

    return folded(folded(folded(unicodedata.normalize("NFKC", text)).casefold()).upper())
