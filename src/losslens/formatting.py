"""One way to print a number, an interval, a change, a missing value and a name.

Pure. The terminal, the HTML page (and later markdown and the notebook card) format every
value through these functions, so that the same number never reads differently in two
places. Markup escaping is the templates' job (Jinja autoescape); what is done here is what
every output needs: control characters made visible, long names shortened.
"""

from __future__ import annotations

import math
import unicodedata

from .catalog import CALIBRATION_LOSS, COUNT, INTERVAL, LOG_LOSS, SHARE, TEMPERATURE, metric

#: A value that does not exist (the loss of a class with no examples, an interval of one example).
MISSING = "—"
#: Names longer than this are shortened in tables and charts (the full name is on hover, and in the JSON).
NAME_WIDTH = 40


def finite(x) -> bool:
    """Whether ``x`` is a real, finite number (not None, NaN, infinite or a bool)."""
    return x is not None and not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def number(x, decimals: int = 4) -> str:
    """A number with fixed decimals; values too small to show in scientific notation.

    Never ``-0.0000``: a value that rounds to zero prints as zero without a sign.

    Examples
    --------
    >>> number(0.123456), number(2.3e-7), number(-1e-20, 2), number(None), number(float("inf"))
    ('0.1235', '2.30e-07', '-1.00e-20', '—', '∞')
    >>> number(-0.0), number(-0.00004, 4)
    ('0.0000', '-4.00e-05')
    """
    if x is None or isinstance(x, bool):
        return MISSING
    x = float(x)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return f"{0.0:.{decimals}f}"
    if abs(x) < 0.5 * 10 ** (-decimals):
        return f"{x:.2e}"
    text = f"{x:.{decimals}f}"
    # A value at the edge of rounding (-0.00005 at 4 decimals) must not print as -0.0000.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def count(x) -> str:
    """A count with thousands separators; a non-whole weight with 2 decimals.

    >>> count(1234567), count(2.5), count(None)
    ('1,234,567', '2.50', '—')
    """
    if not finite(x):
        return MISSING
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}"
    return f"{int(x):,}"


def percent(x, decimals: int = 2) -> str:
    """A share as a percentage.

    >>> percent(0.91234), percent(0.5, 1), percent(float("nan"))
    ('91.23%', '50.0%', '—')
    """
    if not finite(x):
        return MISSING
    return f"{100 * x:.{decimals}f}%"


def signed(x, decimals: int = 4) -> str:
    """A change with its sign: ``+0.0123``, ``-0.0123``, ``+0.0000`` for no change.

    >>> signed(0.01234), signed(-0.01234), signed(-0.0), signed(None)
    ('+0.0123', '-0.0123', '+0.0000', '—')
    """
    text = number(x, decimals)
    return text if text == MISSING or text.startswith(("-", "−")) else "+" + text


def points(x, decimals: int = 2) -> str:
    """A change of a share in percentage points: ``+1.25 pp``.

    >>> points(0.0125), points(None)
    ('+1.25 pp', '—')
    """
    return MISSING if not finite(x) else signed(100 * x, decimals) + " pp"


def interval(ci, decimals: int = 4, fmt=None) -> str:
    """A 95% interval as ``low–high``; missing when it does not exist (one example, or absent
    from a JSON document).

    >>> interval((0.1, 0.25)), interval([float("nan"), float("nan")]), interval(None)
    ('0.1000–0.2500', '—', '—')
    """
    if not isinstance(ci, (tuple, list)) or len(ci) != 2:
        return MISSING
    low, high = ci
    if not (finite(low) and finite(high)):
        return MISSING
    show = fmt or (lambda v: number(v, decimals))
    return f"{show(low)}–{show(high)}"


def signed_interval(ci, decimals: int = 4) -> str:
    """A 95% interval of a change as ``+low to +high``.

    >>> signed_interval((-0.02, 0.01))
    '-0.0200 to +0.0100'
    """
    low, high = ci
    if not (finite(low) and finite(high)):
        return MISSING
    return f"{signed(low, decimals)} to {signed(high, decimals)}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 example``, ``2 examples``, ``1,000 examples``.

    >>> plural(1, "example"), plural(3, "class", "classes")
    ('1 example', '3 classes')
    """
    return f"{count(n)} {word if n == 1 else (many or word + 's')}"


def p_value(p) -> str:
    """A p-value with 2 significant digits (``p = 0.031``), ``p < 1e-300`` at the end of doubles.

    >>> p_value(0.03125), p_value(2.5e-12), p_value(0.0), p_value(None)
    ('p = 0.031', 'p = 2.5e-12', 'p < 1e-300', 'p = —')
    """
    if not finite(p):
        return f"p = {MISSING}"
    return "p < 1e-300" if p < 1e-300 else f"p = {p:.2g}"


def detectable_change(n: int, units: str, mde, unit: str) -> str:
    """The minimum detectable effect of a comparison as a sentence (80 % power, α = 0.05).

    >>> detectable_change(1200, "question", 0.0312, "nats")
    'with 1,200 questions you can detect a change of 0.0312 nats, not smaller'
    """
    return f"with {plural(n, units)} you can detect a change of {mde:.3g} {unit}, not smaller" if finite(mde) else (
        f"with {plural(n, units)} the smallest detectable change is unknown")


def flips(mcnemar: dict) -> str:
    """McNemar's counts both ways and its exact p-value, as a clause.

    >>> flips({"improved": 18, "worsened": 5, "p_value": 0.0106})
    '18 became right, 5 became wrong (McNemar exact p = 0.011)'
    """
    return (f"{count(mcnemar['improved'])} became right, {count(mcnemar['worsened'])} became wrong "
            f"(McNemar exact {p_value(mcnemar['p_value'])})")


def value(name: str, x) -> str:
    """A value of the metric ``name`` as its catalog entry says: count, percent, interval or number.
    """
    entry = metric(name)
    if entry.kind == COUNT:
        return count(x)
    if entry.kind == SHARE:
        return percent(x, entry.decimals)
    if entry.kind == INTERVAL:
        return interval(x, entry.decimals)
    return number(x, entry.decimals)


def interval_of(name: str, ci) -> str:
    """A 95% interval of the metric ``name``: shares in percent, numbers with the metric's decimals.
    """
    entry = metric(name)
    if entry.kind == SHARE:
        return interval(ci, fmt=lambda v: percent(v, entry.decimals))
    return interval(ci, entry.decimals)


def change(name: str, x) -> str:
    """A change of the metric ``name``: shares in percentage points, counts whole, numbers signed.

    Shares print in percent (changes in percentage points), counts whole, numbers with the
    metric's decimals (``tests/test_formatting.py`` has worked examples).
    """
    entry = metric(name)
    if entry.kind == SHARE:
        return points(x, entry.decimals)
    if entry.kind == COUNT:
        return MISSING if not finite(x) else ("+" if x >= 0 else "") + count(x)
    return signed(x, entry.decimals)


def gate_value(value: float | None, *, warning: bool = False, delta: bool = False) -> str:
    """A gate's value, the same in the terminal, the page and the quiet failure line.

    Six significant digits (the threshold is compared with the full value); a count of
    warnings for ``--fail-on-warning``; a sign for ``delta.`` gates; ``undefined`` when the
    value could not be computed (which fails the gate).

    >>> gate_value(0.08371334), gate_value(0.02, delta=True), gate_value(2.0, warning=True), gate_value(None)
    ('0.0837133', '+0.02', '2', 'undefined')
    """
    if value is None or not math.isfinite(value):
        return "undefined"
    if warning:
        return count(value)
    text = f"{value:.6g}"
    if text in ("-0", "0"):
        text = "0"
    return ("+" + text if not text.startswith("-") else text) if delta else text


def fixable(metrics) -> str:
    """The log-loss split in words: "0.0193 of your 0.0973 nats are miscalibration that one
    temperature fixes (T = 2.078)"; empty when the scope has no temperature.
    """
    cal, loss, t = (getattr(metrics, n, None) for n in (CALIBRATION_LOSS, LOG_LOSS, TEMPERATURE))
    if not (finite(cal) and finite(loss) and finite(t)):
        return ""
    if cal < 0:
        return (f"the temperature fitted on the held-out splits (T = {number(t, 3)}) would add "
                f"{number(-cal)} nats to these {number(loss)}: nothing here is fixable by a temperature")
    return (f"{number(cal)} of your {number(loss)} nats are miscalibration that one temperature fixes "
            f"(T = {number(t, 3)}); the other {number(loss - cal)} nats are refinement it cannot fix")


def iso_time(moment) -> str:
    """A timezone-aware time as ISO 8601, UTC written ``Z`` (the JSON's ``generated_at``, the trend page).

    >>> from datetime import datetime, timezone
    >>> iso_time(datetime(2026, 3, 1, 4, 30, tzinfo=timezone.utc))
    '2026-03-01T04:30:00Z'
    """
    return moment.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- names from the data

#: Characters that may move the cursor, ring the bell or reorder text: C0/C1 controls, and
#: the bidirectional overrides and isolates (right-to-left *text* itself is left alone).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def visible(text, keep: str = "") -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\u202e``).

    A label from a file must not be able to move the terminal's cursor, ring its bell or
    break a line of a table. Printable text, right-to-left scripts and emoji are kept, and so
    are the characters in ``keep`` (the HTML page keeps its own line breaks).

    >>> visible("cat\\x1b[31m\\x07"), visible("שלום 🐈")
    ('cat\\\\x1b[31m\\\\x07', 'שלום 🐈')
    """
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _BIDI_CONTROLS:
            out.append(f"\\u{ord(ch):04x}")
        elif ch.isprintable() or ch == " " or ch in keep:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (East Asian, emoji) characters count two,
    combining marks none."""
    total = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def shorten(text, limit: int = NAME_WIDTH, words: bool = False) -> str:
    """``text`` made visible and cut to ``limit`` terminal columns with ``…`` at the end.

    With ``words``, a message is cut at the end of its last whole word that fits (a word
    longer than half the limit is still cut), so that no word is shown half.

    >>> shorten("a" * 50, 10), shorten("short"), shorten("log loss 1.25 is above", 16, words=True)
    ('aaaaaaaaa…', 'short', 'log loss 1.25 …')
    """
    text = visible(text)
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    cut = "".join(out)
    if words and not text[len(cut)].isspace():
        whole = cut[: cut.rfind(" ") + 1]
        cut = whole if width(whole) > limit // 2 else cut
    return cut + "…"


def name(text, limit: int = NAME_WIDTH) -> str:
    """A class, run, split or slice name as tables and charts show it: visible and shortened."""
    return shorten(text, limit)


#: The narrowest a set of shortened names gets: room for a few characters and a hash.
MIN_NAME_WIDTH = 8
#: Where a shared beginning of names is cut: after a path, run/task or word separator.
_BREAKS = "/\\_-.: "


def _common(a: str, b: str) -> int:
    """Length of the common beginning of ``a`` and ``b``."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _after_break(text: str, n: int) -> int:
    """Index just after the last separator in ``text[:n]`` (0 if none): where a shared beginning is cut.

    A path's ``/`` first, so that the last part of a path (a task, a file) stays whole.
    """
    slash = max(text.rfind("/", 0, n), text.rfind("\\", 0, n))
    return (slash if slash >= 0 else max(text.rfind(ch, 0, n) for ch in _BREAKS)) + 1


def _telling(names: list[str]) -> dict[str, tuple[int, int]]:
    """Per name, the first and last index at which it differs from the names nearest to it.

    The first: past the longest beginning it shares with another name; the last: before the
    longest end it shares with another. Neighbours in sorted order share the longest parts.
    """
    first, last = {n: 0 for n in names}, {n: len(n) - 1 for n in names}
    for key, store in ((lambda n: n, first), (lambda n: n[::-1], last)):
        ordered = sorted(names, key=key)
        for a, b in zip(ordered, ordered[1:]):
            shared = _common(key(a), key(b))
            for n in (a, b):
                if store is first:
                    first[n] = max(first[n], shared)
                else:
                    last[n] = min(last[n], len(n) - 1 - shared)
    return {n: (first[n], last[n]) for n in names}


def _head(text: str, columns: int) -> str:
    """The longest beginning of ``text`` that takes at most ``columns`` terminal columns."""
    out, used = [], 0
    for ch in text:
        if used + width(ch) > columns:
            break
        out.append(ch)
        used += width(ch)
    return "".join(out)


def _render(text: str, spans) -> str:
    """``text``'s kept spans joined, ``…`` wherever something was left out."""
    out, pos = [], 0
    for a, b in spans:
        if a > pos:
            out.append("…")
        out.append(text[a:b])
        pos = b
    return "".join(out) + ("…" if pos < len(text) else "")


def _cuts(text: str, starts, limit: int):
    """Kept spans of ``text`` whose rendering fits ``limit`` columns, the most readable first.

    For each start (the beginning every name shares cut off, then this name's shared
    beginning, then none): the rest whole, or its middle cut keeping about two thirds for the
    end (where checkpoints and tasks differ), the cut moving one column at a time.
    """
    cols = [width(ch) for ch in text]
    n = len(text)

    def forward(a, columns):
        b = a
        while b < n and columns >= cols[b]:
            columns -= cols[b]
            b += 1
        return b

    def backward(b, columns):
        a = b
        while a > 0 and columns >= cols[a - 1]:
            columns -= cols[a - 1]
            a -= 1
        return a

    for s in dict.fromkeys(starts):
        room = limit - (1 if s else 0)
        if sum(cols[s:]) <= room:
            yield ((s, n),)
            continue
        room -= 1  # the ellipsis in the middle
        end = (2 * room) // 3
        for step in range(room + 1):
            tail = end + (step + 1) // 2 if step % 2 else end - step // 2
            if 0 <= tail <= room:
                a, b = forward(s, room - tail), backward(n, tail)
                if a < b:
                    yield ((s, a), (b, n))


def shorten_names(names, limit: int = NAME_WIDTH) -> dict[str, str]:
    """Each distinct name made visible and fitted to ``limit`` columns, different names kept different.

    A set of names is shortened together, so that names which differ never print alike
    (``loglikelihood`` and ``loglikelihood_rolling``, ``base/zen_ll`` and ``base/zen_rolling``,
    checkpoints that differ in the middle of a long path). A name that fits is kept whole. A
    longer one loses the beginning every name shares (up to a ``/``, ``_``, ``-``, ``.``, ``:``
    or space), and then, if still too long, its middle; when two cuts would still print alike,
    the cut moves until they differ, and as a last resort the name ends with a short hash of
    itself. Control characters are escaped first (:func:`visible`), wide characters count two.

    Parameters
    ----------
    names : iterable of str
        Run, task, scope or class names; repeats are allowed.
    limit : int
        Terminal columns each shown name may take; at least :data:`MIN_NAME_WIDTH` (narrower,
        a set of names could not stay distinct).

    Returns
    -------
    dict
        From each name (as given, made ``str``) to the text shown.

    Examples
    --------
    >>> list(shorten_names(["zen-ngram-base/zen_loglikelihood", "zen-ngram-base/zen_loglikelihood_rolling"], 24).values())
    ['…zen_loglikelihood', '…zen_logl…lihood_rolling']
    >>> list(shorten_names(["ck/step1000/out/arc_easy", "ck/step2000/out/arc_easy", "mmlu"], 16).values())
    ['ck/step1…rc_easy', 'ck/step2…rc_easy', 'mmlu']
    """
    full = list(dict.fromkeys(str(n) for n in names))
    shown = {n: visible(n) for n in full}
    limit = max(limit, MIN_NAME_WIDTH)
    if all(width(v) <= limit for v in shown.values()):
        return shown
    values = list(dict.fromkeys(shown.values()))
    shared = _after_break(min(values), _common(min(values), max(values))) if len(values) > 1 else 0
    telling = _telling(values)
    taken = {v for v in values if width(v) <= limit}
    out = {}
    for n in full:
        v = shown[n]
        if width(v) <= limit:
            out[n] = v
            continue
        first, last = telling[v]
        needed = {i for i in (first, last) if 0 <= i < len(v)}
        starts = (shared, _after_break(v, first), 0)
        cuts = [_render(v, spans) for spans in _cuts(v, starts, limit)
                if all(any(a <= i < b for a, b in spans) for i in needed)]
        cuts += [_render(v, spans) for spans in _cuts(v, starts, limit)]  # what tells it apart cannot show
        choice = next((c for c in cuts if c not in taken), None)
        if choice is None:
            import hashlib

            tag = "#" + hashlib.blake2b(n.encode("utf-8", "surrogatepass"), digest_size=3).hexdigest()
            choice = _head(v, max(limit - len(tag) - 1, 0)) + "…" + tag
        taken.add(choice)
        out[n] = choice
    return out
