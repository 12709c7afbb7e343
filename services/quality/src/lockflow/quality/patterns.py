"""Patterns the quality pass recognises: missing-value tokens, sentinels, formats, personal data.

Regular expressions are RE2 syntax (pyarrow compute) and anchored where a whole value must match.
"""

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockflow.common.columns import ID_RE, looks_like_id  # noqa: F401  (the quality pass names them here)

MISSING_TOKENS = (
    "n/a",
    "na",
    "#n/a",
    "null",
    "none",
    "nil",
    "nan",
    "?",
    "-",
    "--",
    "missing",
    "undefined",
)
MISSING_TOKENS_ARRAY = pa.array(MISSING_TOKENS)
MAX_TOKEN_CHARS = max(len(t) for t in MISSING_TOKENS)
SENTINELS = (-9.0, -99.0, -999.0, -9999.0, -99999.0, 99.0, 999.0, 9999.0, 99999.0, 999999.0)

NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
# ISO dates may carry a time and a zone ('2013-01-01T10:00:00Z', '...+02:00'), as exports write them.
DATE_RE = (
    r"^\s*(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{4})\s*$"
)
ISO_DATE_RE = r"^\s*\d{4}-\d{1,2}-\d{1,2}"
FORMATS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    "url": r"^(https?|ftp)://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/\S*)?$",
    "phone": r"^\+?\d{0,3}[\s.-]?\(?\d{2,4}\)?([\s.-]?\d{2,4}){2,3}$",
    "postal_code": r"^(\d{5}(-\d{4})?|\d{4}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d)$",
}
# Matched against the name as lower-case words joined by '_' ('PhoneNumber' -> 'phone_number'), at word
# starts, so 'hotel', 'telemetry', 'curl' or 'zipper' imply nothing.
FORMAT_HINTS: dict[str, str] = {
    "email": r"(^|_)e_?mail",
    "url": r"(^|_)(url|uri|website|web_?site|homepage|link)(_|s?$)",
    "phone": r"(^|_)((tele)?phone|tel|fax)(_|$|number|no$)|(^|_)(mobile|cell)_?(phone|number|no)(_|$)",
    "postal_code": r"(^|_)(zip|postal|postcode|post_code|plz)(_|$|code)",
}
# A format is the column's only with evidence: its name implies it, or nearly every value of the
# first batch holds it (a majority is not enough: 67% of aircraft tail numbers such as 'N725MQ'
# happen to fit the UK postcode shape, so the other 33% would all be called malformed).
FORMAT_SHARE = 0.9
# Formats loose enough to fit codes and ids by chance ('N725MQ', '1234'): implied by the name only.
NAME_ONLY_FORMATS = frozenset({"phone", "postal_code"})
NUMBER_SHARE = 0.5  # mostly numbers: a type question (type_mismatch), not a format
CARD_RE = r"(^|[^\d])(\d[ -]?){12,18}\d($|[^\d])"
# Unanchored, so one character before the @ is as good as the whole local part (and cheaper to
# search); the domain is the same as FORMATS["email"], so a value in email format always contains one.
EMAIL_IN_TEXT_RE = r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# Control characters (not tab/newline/CR), the replacement character, and the UTF-8-read-as-Latin-1
# signatures (Ã©, Â , â€™ ...).
DAMAGE_RE = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]|\x{FFFD}|Ã[\x{80}-\x{BF}]|Â[\x{80}-\x{BF}]|â€"
# Matched against the name's words (see `name_words`), so 'cost' does not match 'costa' nor 'age' 'stage'.
RANGES: list[tuple[str, tuple[float | None, float | None]]] = [
    (r"(^|_)age(_|$)", (0.0, 120.0)),
    (r"(^|_)(pct|percent|percentage)(_|$)", (0.0, 100.0)),
    (
        r"(^|_)(price|amount|quantity|qty|count|salary|income|revenue|cost|weight|height)(_|$|s$)",
        (0.0, None),
    ),
]
# Words that make a quantity signed or relative ('price_change', 'net_income', 'pct_diff'): no range.
SIGNED_WORDS = (
    r"(^|_)(change|chg|diff|difference|delta|growth|return|returns|net|balance|profit|gain|loss|"
    r"adjustment|variance|error|residual|offset|z|score|log)(_|$)"
)
START_END = [
    ("start", "end"),
    ("begin", "end"),
    ("from", "to"),
    ("opened", "closed"),
    ("checkin", "checkout"),
]


def implied_range(name: str) -> tuple[float | None, float | None] | None:
    """Plausible bounds implied by a column's name (age 0..120, percentages 0..100, amounts >= 0)."""
    words = name_words(name)
    if re.search(SIGNED_WORDS, words):
        return None
    for pattern, bounds in RANGES:
        if re.search(pattern, words):
            return bounds
    return None


def start_end_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Column pairs like (start_date, end_date) or (valid_from, valid_to)."""
    pairs = []
    lowered = {n.lower(): n for n in names}
    for a, b in START_END:
        for low, name in lowered.items():
            if re.search(rf"(^|_){a}($|_)", low):
                partner = re.sub(rf"(^|_){a}($|_)", rf"\g<1>{b}\g<2>", low, count=1)
                if partner in lowered and partner != low:
                    pairs.append((name, lowered[partner]))
    return pairs


def name_words(name: str) -> str:
    """A column name as lower-case words joined by '_' ('PhoneNumber', 'phone-number' -> 'phone_number')."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def choose_format(name: str, present: pa.Array, is_number: pa.Array, is_date: pa.Array) -> str | None:
    """The column's format, judged on its first values: implied by its name, or held by nearly every
    value (FORMAT_SHARE; phones and postcodes by the name only)."""
    n = len(present)
    if n == 0:
        return None
    words = name_words(name)
    for fmt, hint in FORMAT_HINTS.items():
        if re.search(hint, words):
            return fmt
    if _share(is_date) >= FORMAT_SHARE:
        return "date"
    if _share(is_number) >= NUMBER_SHARE:
        return None
    for fmt, pattern in FORMATS.items():
        if fmt in NAME_ONLY_FORMATS:
            continue
        if _share(pc.match_substring_regex(present, pattern)) >= FORMAT_SHARE:
            return fmt
    return None


def _share(mask: pa.Array) -> float:
    return (
        float(pc.mean(pc.cast(pc.fill_null(mask, False), pa.float64())).as_py() or 0.0) if len(mask) else 0.0
    )


def format_ok(fmt: str, values: pa.Array, *, trimmed: pa.Array | None = None) -> pa.Array:
    """True where a value fits the format (dates must also exist in the calendar).

    `trimmed` is `values` with their whitespace trimmed, when the caller has it already.
    """
    if trimmed is None:
        trimmed = pc.utf8_trim_whitespace(values)
    if fmt != "date":
        return pc.fill_null(pc.match_substring_regex(trimmed, FORMATS[fmt]), False)
    shaped = pc.match_substring_regex(trimmed, DATE_RE)
    return pc.and_(pc.fill_null(shaped, False), pc.is_valid(parse_dates(trimmed)))


def parse_dates(values: pa.Array) -> pa.Array:
    """Parse ISO (yyyy-mm-dd, with a time and a zone if given) or dd/mm/yyyy text to timestamps (UTC when
    a zone is given); null if not a real calendar date or time of day."""
    values = pc.cast(values, pa.string())
    iso = pc.extract_regex(values, r"^\s*(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})")
    dmy = pc.extract_regex(values, r"^\s*(?P<d>\d{1,2})[/.](?P<m>\d{1,2})[/.](?P<y>\d{4})")
    parts = {k: pc.coalesce(pc.struct_field(iso, k), pc.struct_field(dmy, k)) for k in ("y", "m", "d")}
    text = pc.binary_join_element_wise(
        parts["y"],
        pc.utf8_lpad(parts["m"], width=2, padding="0"),
        pc.utf8_lpad(parts["d"], width=2, padding="0"),
        "-",
    )
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 2023-02-30 over to March: keep only dates whose day and month survive.
    same = pc.and_(
        pc.equal(pc.month(parsed), pc.cast(parts["m"], pa.int64())),
        pc.equal(pc.day(parsed), pc.cast(parts["d"], pa.int64())),
    )
    days = pc.if_else(pc.fill_null(same, False), parsed, pa.scalar(None, parsed.type))
    return _with_time_of_day(values, days)


def _with_time_of_day(values: pa.Array, days: pa.Array) -> pa.Array:
    """`days` plus the time of day (and minus the zone's offset) an ISO value gives after its date, so
    '2013-01-01T10:00:00Z' keeps its 10 o'clock; null where the time is not a real one (25:00)."""
    clock = pc.extract_regex(
        values,
        r"^\s*\d{4}-\d{1,2}-\d{1,2}[ T](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\.\d+)?"
        r"(?P<zs>[+-]?)(?P<zh>\d{0,2}):?(?P<zm>\d{0,2})Z?\s*$",
    )

    def number(name: str) -> pa.Array:
        text = pc.struct_field(clock, name)
        return pc.cast(pc.if_else(pc.equal(text, ""), "0", text), pa.int64())

    hours, minutes, seconds = number("h"), number("mi"), number("s")
    real = pc.and_(pc.and_(pc.less(hours, 24), pc.less(minutes, 60)), pc.less(seconds, 61))
    offset = pc.add(pc.multiply(number("zh"), 3600), pc.multiply(number("zm"), 60))
    sign = pc.if_else(pc.equal(pc.struct_field(clock, "zs"), "-"), -1, 1)
    total = pc.subtract(
        pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds),
        pc.multiply(sign, offset),
    )
    shifted = pc.add(days, pc.cast(pc.fill_null(total, 0), pa.duration("s")))
    timed = pc.is_valid(clock)
    ok = pc.or_(pc.invert(timed), pc.fill_null(real, False))
    return pc.if_else(ok, pc.if_else(timed, shifted, days), pa.scalar(None, days.type))


def pii_masks(
    present: pa.Array, fmt: str | None, *, format_fits: np.ndarray | None = None
) -> dict[str, pa.Array]:
    """Masks of values holding an email address, a phone number, or a card number (Luhn-valid).

    `format_fits` (where the values already fit the column's format `fmt`) spares the search
    for an email in values already known to be one.
    """
    masks: dict[str, pa.Array] = {}
    if fmt == "phone":
        masks["phone"] = pa.array(format_fits) if format_fits is not None else format_ok("phone", present)
    # Cheap necessary conditions first; the regex runs only on values that meet them.
    if fmt == "email" and format_fits is not None:
        known = np.asarray(format_fits, dtype=bool)
        masks["email"] = pa.array(known | _holding_email(present, ~known))
    else:
        masks["email"] = pa.array(match_where(present, EMAIL_IN_TEXT_RE, byte_counts(present, AT_BYTE) > 0))
    # A card number needs 13 digits, so a value of fewer bytes is not counted through.
    long_enough = _byte_lengths(present) >= CARD_MIN_DIGITS
    card_shaped = np.zeros(len(present), dtype=bool)
    if long_enough.any():
        enough_digits = long_enough & (byte_counts(present, DIGIT_BYTES) >= CARD_MIN_DIGITS)
        card_shaped = match_where(present, CARD_RE, enough_digits)
    if card_shaped.any():
        masks["card_number"] = pc.and_(pa.array(card_shaped), luhn_valid(present))
    return masks


def _holding_email(values: pa.Array, candidates: np.ndarray) -> np.ndarray:
    """Where a candidate value holds an email address; only the candidates are read."""
    picked = np.flatnonzero(candidates)
    out = np.zeros(len(values), dtype=bool)
    if len(picked) == 0:
        return out
    subset = values if len(picked) == len(values) else values.take(pa.array(picked))
    out[picked] = match_where(subset, EMAIL_IN_TEXT_RE, byte_counts(subset, AT_BYTE) > 0)
    return out


def _byte_lengths(values: pa.Array) -> np.ndarray:
    """Each value's length in bytes (0 for a null); every value counts as long for non-strings."""
    parts = _string_buffers(values)
    if parts is None:
        return np.full(len(values), np.iinfo(np.int64).max, dtype=np.int64)
    return np.diff(parts[1])


def _byte_table(chars: str = "", ranges: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    for c in chars:
        table[ord(c)] = True
    for low, high in ranges:
        table[low : high + 1] = True
    return table


DIGIT_BYTES = (0x30, 0x39)  # a byte range: counted by arithmetic, not a table lookup
AT_BYTE = (0x40, 0x40)
CARD_MIN_DIGITS = 13  # CARD_RE needs 13 to 19 digits
# A value can only fit NUMBER_RE if it starts with a digit, sign, point or space (RE2's \s is ASCII);
# DATE_RE needs a digit or space first.
NUMBER_START = _byte_table("+-. \t\n\v\f\r", ((0x30, 0x39),))
DATE_START = _byte_table(" \t\n\v\f\r", ((0x30, 0x39),))
# Every DAMAGE_RE match contains a control byte or a byte >= 0x80 (Ã, Â, â and U+FFFD are non-ASCII).
DAMAGE_BYTES = _byte_table("\x0b\x0c\x7f", ((0x00, 0x08), (0x0E, 0x1F), (0x80, 0xFF)))


def _string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(data bytes, offsets) of a string array, or None for other layouts."""
    if not pa.types.is_string(values.type):
        return None
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    return data, offsets


def byte_counts(values: pa.Array, table: np.ndarray | tuple[int, int]) -> np.ndarray:
    """How many bytes of each value are in `table`, a 256-entry lookup table or an inclusive
    (low, high) byte range (faster). Every value counts as a hit for non-strings."""
    parts = _string_buffers(values)
    if parts is None:
        return np.full(len(values), np.iinfo(np.int64).max, dtype=np.int64)
    data, offsets = parts
    data = data[: offsets[-1]]  # a sliced array's buffer may run on past its last value
    starts, ends = offsets[:-1], offsets[1:]
    if len(values) == 0 or offsets[-1] == offsets[0]:
        return np.zeros(len(values), dtype=np.int64)
    # A segmented sum: reduceat adds data[start:next_start]; an empty value gets data[start]
    # instead of 0, hence the fix-up.
    if isinstance(table, tuple):
        low, high = table
        hits = np.subtract(data, np.uint8(low), dtype=np.uint8) <= np.uint8(high - low)  # wraps below low
    else:
        hits = table[data]
    counts = np.add.reduceat(hits, np.minimum(starts, len(data) - 1), dtype=np.int64)
    counts[ends == starts] = 0
    return counts


def first_byte_in(values: pa.Array, table: np.ndarray) -> np.ndarray:
    """True where a value's first byte is in `table` (True for non-strings; False when empty)."""
    parts = _string_buffers(values)
    if parts is None:
        return np.ones(len(values), dtype=bool)
    data, offsets = parts
    nonempty = offsets[1:] > offsets[:-1]
    if not len(data):
        return np.zeros(len(values), dtype=bool)
    return nonempty & table[data[np.minimum(offsets[:-1], len(data) - 1)]]


def any_byte_in(values: pa.Array, table: np.ndarray) -> bool:
    """True if any byte of the values is in `table` (True for non-strings)."""
    parts = _string_buffers(values)
    if parts is None:
        return True
    data, offsets = parts
    used = data[offsets[0] : offsets[-1]]
    if len(used) == 0:
        return False
    # Every byte lies in [min, max]: when the table has no byte in that span, nothing can hit.
    if not table[int(used.min()) : int(used.max()) + 1].any():
        return False
    return bool(table[used].any())


def match_where(values: pa.Array, pattern: str, candidates: np.ndarray) -> np.ndarray:
    """`pattern` matched on the candidate values only (others are False): same result, less work
    when the candidates are the only values that could match."""
    out = np.zeros(len(values), dtype=bool)
    picked = np.flatnonzero(candidates)
    if len(picked) == 0:
        return out
    subset = values if len(picked) == len(values) else values.take(pa.array(picked))
    hits = pc.fill_null(pc.match_substring_regex(subset, pattern), False)
    out[picked] = np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)
    return out


def luhn_valid(values: pa.Array) -> pa.Array:
    """True where the digits of a value (13-19 of them) pass the Luhn check."""
    digits = pc.replace_substring_regex(pc.fill_null(values, ""), r"[^0-9]", "")
    length = pc.utf8_length(digits).to_numpy(zero_copy_only=False)
    ok_len = (length >= 13) & (length <= 19)
    padded = pc.utf8_lpad(pc.utf8_slice_codeunits(digits, 0, 19), width=19, padding="0")
    buffer = padded.buffers()[2]
    raw = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.empty(0, np.uint8)
    grid = raw[: len(values) * 19].reshape(-1, 19).astype(np.int64) - 48
    # From the right, double every second digit; 19 columns, so doubled positions are 17, 15, ...
    doubled = grid.copy()
    doubled[:, 17::-2] *= 2
    doubled[doubled > 9] -= 9
    valid = (doubled.sum(axis=1) % 10 == 0) & ok_len
    return pa.array(valid)
