"""The checks every value a user types or a client sends passes before the store writes it: names, free text
(notes), ids; and the quality flags an annotation may carry. One owner for the limits, so SQLite and PostgreSQL refuse the same values with the same message
(PostgreSQL refuses NUL characters and 32-bit overflows itself, SQLite would store or overflow them)."""

from __future__ import annotations

import re

from histoapp.store.errors import StoreError

# An annotation's quality flags: its boolean columns (models.Annotation) -> the words the Annotate tab shows. Here,
# free of SQLAlchemy, so the UI imports the one list while the app starts.
QUALITY_FLAGS = {"blur": "blur", "fold": "fold", "pen_mark": "pen mark", "out_of_focus": "out of focus"}
# A pathologist's rating of an explanation map (models.MapRating.rating): does it highlight the diagnostic region?
MAP_RATINGS = {
    1: "misses the diagnostic region",
    2: "mostly off it",
    3: "partly on it",
    4: "mostly on it",
    5: "on the diagnostic region",
}
MAX_NAME = 64  # annotator / adjudicator / actor names (the columns' width)
MAX_NOTE = 2_000  # a note on an annotation or adjudication: a few sentences, not a file
MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32-bit on PostgreSQL
# Control characters other than tab, newline and carriage return: NUL is refused by PostgreSQL (and truncates
# C strings elsewhere); none belongs in a name or a note.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value, what: str, limit: int) -> str:
    """``value`` as text of at most ``limit`` characters without control characters, else ``StoreError``."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        raise StoreError(f"{what} is {len(text):,} characters long; the limit is {limit:,}")
    if _CONTROL.search(text):
        raise StoreError(f"{what} contains a control character (e.g. a NUL byte); remove it")
    return text


def check_name(name: str | None, what: str = "annotator") -> str:
    name = (name or "").strip()
    if not name:
        raise StoreError(f"enter an {what} name first")
    if len(name) > MAX_NAME:
        raise StoreError(f"{what} name longer than {MAX_NAME} characters")
    return check_text(name, f"{what} name", MAX_NAME)


def check_note(note) -> str:
    return check_text(note, "note", MAX_NOTE)


def check_id(value, what: str = "image") -> int:
    """A row id as an int; anything else (text, a float, a number no row can have) is ``no <what> with id``."""
    try:
        number = int(value)
        whole = not isinstance(value, float) or float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        number, whole = None, False
    if number is None or not whole or not 1 <= number <= MAX_ID:
        raise StoreError(f"no {what} with id {str(value)[:40]}")
    return number
