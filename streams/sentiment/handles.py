"""Links and @handles, which say nothing of a post's sentiment or language: removed before the
emoji rule and language detection look at a text.

A handle may hold dots and dashes between its word characters (Instagram, TikTok and YouTube
allow them: ``@kari.nordmann``, ``@ola-hansen``). Matched as ``@\\w+`` only, ``@kari.nordmann 🤬``
left ``.nordmann`` behind, a word, so the emoji rule passed the reply to the model, which read
it as neutral; a full stop after a handle (``… til @ola.``) is not part of it.
"""

from __future__ import annotations

import re

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE = re.compile(r"(?<!\w)@\w+(?:[.-]\w+)*")
