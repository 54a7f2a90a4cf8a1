"""Phone numbers as the service takes them: E.164 (`E164PhoneNumber` of the API model,
`^\\+?[1-9]\\d{1,14}$`), the same for the API's members and the actions' parameters.

The model's pattern is an ECMAScript regex: its `\\d` is an ASCII digit and its `$` ends the
text, so a trailing newline or a non-ASCII digit is not a number.
"""
from __future__ import annotations

import re

E164 = re.compile(r"\+?[1-9][0-9]{1,14}")


def is_e164(value: object) -> bool:
    """Whether `value` is an E.164 number such as +12065550100."""
    return isinstance(value, str) and E164.fullmatch(value) is not None
