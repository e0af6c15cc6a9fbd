"""User-given names (run names, upload names): what the Studio accepts, so a name can't hide or fake text.

Why: a name is shown in every session (the sidebar's jobs panel, Gallery, Compare, exports). Control
characters break layouts and logs; bidirectional overrides (U+202E ...) make a name read differently from
what it is; zero-width and other format characters make two names look the same. Markup needs no rule
here: pages show names as literal text (app/widgets.plain), whatever they contain.
"""
from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 200


def check_name(name: str, what: str = "A run name", max_length: int = MAX_NAME_LENGTH) -> str:
    """`name` stripped, or ValueError saying which character is refused and where."""
    if not isinstance(name, str):
        raise ValueError(f"{what} must be text, not {type(name).__name__}")
    name = name.strip()
    if not name:
        raise ValueError(f"{what} cannot be empty")
    if len(name) > max_length:
        raise ValueError(f"{what} is limited to {max_length} characters (this one has {len(name)})")
    for position, char in enumerate(name, 1):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            label = unicodedata.name(char, f"U+{ord(char):04X}")
            kind = ("a bidirectional or invisible formatting character" if category == "Cf"
                    else "a control or unassigned character")
            raise ValueError(f"{what} cannot contain {kind} ({label}, U+{ord(char):04X}, at position {position})")
    return name
