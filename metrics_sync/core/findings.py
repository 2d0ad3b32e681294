"""Findings: what plan (and later health checks) tell a user about the definitions and LaunchDarkly, as values.

A finding has a stable `kind` (a code scripts and tests match on, never the message text), a severity, the
subject it is about, a one-line message and a hint. The output layer renders findings; nothing filters them
by their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# refusal: plan cannot be applied as defined (exit 1); alert: a change alters the results of something running
# (the plan's most prominent warnings); warning: worth reading before apply; note: context.
Severity = Literal["refusal", "alert", "warning", "note"]


@dataclass(frozen=True)
class Finding:
    kind: str  # a stable code, e.g. "kind-change", "unavailable-unit", "changes-running-results"
    severity: Severity
    message: str  # one line, without the location: what is wrong or worth knowing
    subject: str = ""  # what it is about, e.g. "metric `order-value` in project `shop`"
    hint: str | None = None  # what to do about it
    source: str | None = None  # where in the definitions (file:line:col), when it is about a definition

    def text(self) -> str:
        """The one-line form: `source: subject: message; hint` (the parts that are present)."""
        head = ": ".join(part for part in (self.source, self.subject, self.message) if part)
        return f"{head}; {self.hint}" if self.hint else head


def code(text: str) -> str:
    """`text` quoted as a code span in a message, by CommonMark's rule: a backtick run longer than any in `text`
    (padded with a space where `text` starts or ends with one), so an outside value holding backticks (an event
    key may) stays one span: the Markdown renderer reads it back exactly (output/escape.py: markdown_text)."""
    ticks = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")
                                                                 and text.strip(" ")) else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"
