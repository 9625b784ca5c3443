"""How names that come from data are shown: on a terminal and in Markdown.

Function names, versions, run ids, context names, measured paths and object
keys are read from data files and buckets that other people can write. Shown
raw, they are markup: an escape sequence rewrites a terminal (its title, the
lines above), a bidi override hides text, and in a Markdown summary posted as
a pull-request comment a name becomes an image, a link or a broken table.
Every writer of text for people passes such names through this module; data
outputs (the ``.coverage`` file, JSON, XML, LCOV, HTML) keep them exact, and
their own encoders escape them.

- :func:`terminal_text`: control characters become visible escapes.
- :func:`markdown_name`: a name as a Markdown table cell or in a sentence:
  an ordinary name as it is, anything else as inline code.
- :func:`markdown_code`: text as inline code (paths, keys).
- :func:`markdown_text`: free text (a warning, a reason) with every character
  that could start markup escaped, and words that could become links as code.

Each of them first replaces control characters as :func:`terminal_text`
does, so nothing they return holds one. Stdlib only; the wrapper itself never
imports this module at run time.
"""

from __future__ import annotations

import re
from typing import Final

#: C0 controls (newline, tab, ESC, BEL, ...), DEL, C1 controls (CSI, OSC as
#: one character), the bidi embeddings, overrides and isolates that reorder
#: or hide text, and the Unicode line and paragraph separators.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")

#: A name that Markdown shows as it is wherever it stands: letters, digits,
#: ``-`` and inner ``_`` (an ``_`` between word characters cannot start
#: emphasis), or Lambda's ``$LATEST``. Every function name and version Lambda
#: itself allows that does not begin or end with ``_`` is one.
_PLAIN_NAME: Final = re.compile(r"\$LATEST|[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9-])?")

#: Characters that can start Markdown (CommonMark and GitHub's extensions:
#: tables, strikethrough, math) or HTML; each is written backslash-escaped,
#: which Markdown shows as the character itself.
_MARKUP: Final = re.compile(r"[\\`*_\[\]<>&|~$]")

#: What GitHub's autolinks (and its @mentions) start from: ``scheme://``,
#: ``www.`` and the ``@`` of an address. A backslash does not stop an address
#: (GitHub links ``a\@b.com`` all the same): a word holding one is written as
#: inline code instead.
_LINKABLE: Final = re.compile(r"@|://|www\.", re.IGNORECASE)


def _visible(character: re.Match[str]) -> str:
    code = ord(character.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str) -> str:
    r"""``text`` with every control character written as a visible escape.

    ``"\x1b]0;owned\x07"`` becomes ``"\\x1b]0;owned\\x07"``, a newline
    ``"\\x0a"``, a right-to-left override ``"\\u202e"``: one line that shows
    what the name holds and moves, colours or hides nothing. Pass whole
    messages of one line (add the final newline after).
    """
    return _CONTROL.sub(_visible, text)


def markdown_text(text: str, *, in_table: bool = False) -> str:
    """Free text for a line of Markdown, shown as written: no markup, link or autolink in it works.

    Each word that an autolink or a mention could start from (one holding
    ``@``, ``://`` or ``www.``) is written as inline code
    (:func:`markdown_code`); in every other word ``\\ ` * _ [ ] < > & | ~ $``
    are backslash-escaped. Ordinary words are left alone. ``in_table``: the
    text is a table cell.
    """

    def word(match: re.Match[str]) -> str:
        if _LINKABLE.search(match.group()):
            return markdown_code(match.group(), in_table=in_table)
        return _MARKUP.sub(lambda markup: "\\" + markup.group(), match.group())

    return re.sub(r"\S+", word, terminal_text(text))


def markdown_code(text: str, *, in_table: bool = False) -> str:
    """``text`` as Markdown inline code, whatever backticks it holds.

    The fence is one backtick longer than the longest run inside, padded with
    a space where the text starts or ends with a backtick or a space (Markdown
    takes one such space off each side). ``in_table``: ``|`` is escaped, since
    a table row is split into cells before its inline code is read.
    """
    shown = terminal_text(text)
    if in_table:
        shown = shown.replace("|", "\\|")
    if not shown:
        return "` `"
    fence = "`" * (max((len(run) for run in re.findall("`+", shown)), default=0) + 1)
    if shown[0] in "` " or shown[-1] in "` ":
        shown = f" {shown} "
    return f"{fence}{shown}{fence}"


def markdown_name(name: str, *, in_table: bool = False) -> str:
    """A function name, version, run id or context name for Markdown.

    An ordinary name (``orders-api``, ``my_function``, ``42``, ``$LATEST``) is
    written as it is; any other is written as inline code
    (:func:`markdown_code`), which Markdown shows character for character and
    in which no link, mention, emphasis or HTML works.
    """
    if _PLAIN_NAME.fullmatch(name):
        return name
    return markdown_code(name, in_table=in_table)
