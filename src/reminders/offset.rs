//! A reminder's `before_due` offset: how long before the task's due time the
//! reminder fires, written as an ISO 8601 duration (`PT1H`, `PT30M`, `P1D`,
//! `P1DT12H`, `P2W`).
//!
//! ISO 8601 because it is the duration syntax that OpenAPI tooling and
//! language models both know. Only a subset of it, because parts of the full
//! grammar make no sense for an offset: years and months have no fixed
//! length, a negative or zero offset is not "before", and fractions raise
//! rounding questions nobody needs answered.
//!
//! Most callers are language models, which correct themselves well when told
//! exactly what was wrong. So every refusal names the problem, quotes the
//! value, and shows a value that would have been accepted, computed from
//! what was sent whenever its meaning is clear (`PT1M1H` → `PT1H1M`,
//! `1h` → `PT1H`).

use std::{fmt, str::FromStr};

use chrono::TimeDelta;
use serde::{Serialize, Serializer};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// The longest offset: a yearly task can be reminded of a year ahead, and
/// 366 days covers a leap year. Longer than that is almost certainly a
/// mistake (a unit mix-up), and a bound keeps every sum far from overflow.
const MAX_DAYS: i64 = 366;
const MAX_SECONDS: i64 = MAX_DAYS * DAY;

/// Digits allowed in one number. Ten is already far beyond the maximum in
/// any unit (366 days is 31,622,400 seconds, eight digits) while keeping the
/// arithmetic on what was written trivially free of overflow.
const MAX_DIGITS: usize = 10;

/// Error messages quote at most this many characters of what was sent, so
/// that a pasted paragraph does not come back in full.
const MAX_QUOTED: usize = 40;

/// Valid values to show when nothing more specific can be suggested.
const EXAMPLES: &str =
    "PT1H for 1 hour, PT30M for 30 minutes, P1D for 1 day or P1DT12H for a day and a half";

/// How ISO 8601 durations are built, for values written some other way.
const GRAMMAR: &str = "an ISO 8601 duration starts with P, and hours, minutes and seconds \
     go after a T: P1D is 1 day, PT1H is 1 hour, PT30M is 30 minutes";

/// How long before the due time a reminder fires: a whole number of
/// seconds, from one second up to 366 days.
///
/// Kept as seconds rather than as the text sent so that `PT90M` and
/// `PT1H30M` are the same offset, and stored and shown in one canonical
/// form (see [`BeforeDue::to_iso`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BeforeDue {
    seconds: i64,
}

impl BeforeDue {
    /// Parses an ISO 8601 duration of weeks (`P2W`) or of days, hours,
    /// minutes and seconds (`P1DT12H`, `PT30M`). Designators may be lower
    /// case (models write `pt1h`) and surrounding whitespace is ignored;
    /// anything else outside that subset is refused with an [`OffsetError`]
    /// saying what to write instead.
    pub fn parse(raw: &str) -> Result<Self, OffsetError> {
        let input = raw.trim();
        if input.is_empty() {
            return Err(OffsetError::Empty);
        }
        if input.starts_with(MINUS_SIGNS) {
            return Err(negative(input));
        }
        if input.starts_with('+') {
            return Err(signed(input));
        }
        let Some(body) = input.strip_prefix(['P', 'p']) else {
            return Err(not_iso(input));
        };
        if input.contains(char::is_whitespace) {
            let joined: String = input.chars().filter(|c| !c.is_whitespace()).collect();
            let hint = match Self::parse(&joined) {
                Ok(offset) => format!("write {}", offset.to_iso()),
                Err(_) => format!("write it in one piece, e.g. {EXAMPLES}"),
            };
            return Err(OffsetError::Whitespace {
                input: quote(input),
                hint,
            });
        }
        let lexed = lex(input, body)?;
        let seconds = check(input, &lexed)?;
        Ok(Self { seconds })
    }

    /// An offset read back from storage: `None` outside the range
    /// [`BeforeDue::parse`] accepts.
    pub fn from_seconds(seconds: i64) -> Option<Self> {
        (1..=MAX_SECONDS)
            .contains(&seconds)
            .then_some(Self { seconds })
    }

    /// The offset in seconds, always between 1 and 366 days' worth.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// The offset for date arithmetic: the reminder fires at
    /// `due - offset.as_duration()`.
    pub fn as_duration(&self) -> TimeDelta {
        // Cannot fail: parsing bounds the offset to 366 days, far inside
        // chrono's range.
        TimeDelta::seconds(self.seconds)
    }

    /// The canonical ISO 8601 form: weeks alone when the offset is a whole
    /// number of weeks (`P2W`), otherwise days, hours, minutes and seconds,
    /// largest first, leaving out zeros (`PT1H30M` for 90 minutes, `P1D` for
    /// 24 hours). One form per offset, so that equal offsets read the same
    /// everywhere, and it parses back to the same offset.
    pub fn to_iso(&self) -> String {
        canonical(self.seconds)
    }
}

impl fmt::Display for BeforeDue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

impl FromStr for BeforeDue {
    type Err = OffsetError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// Serialized as the canonical ISO 8601 string, the form clients send.
impl Serialize for BeforeDue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_iso())
    }
}

/// Why a `before_due` value was refused. The message is written for the
/// caller (often a language model): it quotes the value, says what is wrong
/// with it, and shows a valid value, so that the next attempt can succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    #[error(
        "before_due is empty: give an ISO 8601 duration such as PT1H for 1 hour, \
         PT30M for 30 minutes or P1D for 1 day"
    )]
    Empty,
    /// Not ISO 8601 at all: `1h`, `2 days`, `T1H`.
    #[error("`{input}` is not an ISO 8601 duration: {hint}")]
    NotIso { input: String, hint: String },
    #[error(
        "`{input}` is negative, but before_due counts back from the due time, \
         so it is always positive: {hint}"
    )]
    Negative { input: String, hint: String },
    #[error("`{input}` has a plus sign: before_due is always positive, so leave it out: {hint}")]
    Signed { input: String, hint: String },
    #[error(
        "`{input}` is zero: a reminder zero before the due time is a reminder at the due time, \
         so use remind_at with the due time instead, or give a positive offset such as PT15M"
    )]
    Zero { input: String },
    #[error(
        "`{input}` is longer than the maximum of 366 days: before_due can be at most P366D \
         (or P52W)"
    )]
    TooLong { input: String },
    #[error(
        "`{input}` counts years, which have no fixed length: give days or weeks instead, \
         e.g. P365D or P52W (before_due is at most 366 days)"
    )]
    Years { input: String },
    #[error(
        "`{input}` counts months, which have no fixed length: give days or weeks instead, \
         e.g. P30D or P4W. Careful: P{amount}M is {}, while PT{amount}M (with a T) is {}",
        counted(.amount, "month"),
        counted(.amount, "minute")
    )]
    Months { input: String, amount: String },
    #[error(
        "`{input}` has a fraction, but before_due takes whole numbers only: use a smaller \
         unit instead: {hint}"
    )]
    Fraction { input: String, hint: String },
    #[error(
        "`{input}` has no amount: put a number and a unit after the P, e.g. PT1H for 1 hour \
         or P1D for 1 day"
    )]
    MissingAmount { input: String },
    #[error("`{input}` has a T with nothing after it: {hint}")]
    EmptyTime { input: String, hint: String },
    #[error(
        "`{input}` has more than one T: use a single T, before the hours, minutes and \
         seconds, {hint}"
    )]
    RepeatedT { input: String, hint: String },
    #[error(
        "`{input}` gives {unit} twice: give each unit once, largest first, e.g. PT1H30M \
         or P1DT12H"
    )]
    Repeated { input: String, unit: &'static str },
    #[error("`{input}` has {larger} after {smaller}: units go from largest to smallest, {hint}")]
    OutOfOrder {
        input: String,
        larger: &'static str,
        smaller: &'static str,
        hint: String,
    },
    #[error("`{input}` has {unit} {side}: {hint}")]
    WrongSide {
        input: String,
        unit: &'static str,
        side: &'static str,
        hint: String,
    },
    #[error("`{input}` combines weeks with other units, which ISO 8601 does not allow: {hint}")]
    MixedWeeks { input: String, hint: String },
    #[error(
        "`{input}` has `{letter}`, which is not a unit: use W (weeks) or D (days) before \
         the T, and H (hours), M (minutes) or S (seconds) after it, e.g. P1DT12H"
    )]
    UnknownUnit { input: String, letter: char },
    #[error("`{input}` has the number {number} with no unit after it: {hint}")]
    MissingUnit {
        input: String,
        number: String,
        hint: String,
    },
    #[error("`{input}` has `{letter}` with no number before it: write the number first, {hint}")]
    MissingNumber {
        input: String,
        letter: char,
        hint: String,
    },
    #[error(
        "`{input}` has a number of {digits} digits, more than the {max} allowed: \
         before_due is at most 366 days (P366D), so use a larger unit, e.g. P2D rather \
         than PT172800S",
        max = MAX_DIGITS
    )]
    TooManyDigits { input: String, digits: usize },
    #[error("`{input}` has a space in it, but ISO 8601 durations have none: {hint}")]
    Whitespace { input: String, hint: String },
    #[error(
        "`{input}` has `{found}`, which does not belong in an ISO 8601 duration: write numbers \
         each followed by a unit, e.g. {}",
        EXAMPLES
    )]
    UnexpectedChar { input: String, found: char },
}

/// The characters read as a minus sign: ASCII and the typographic one, which
/// text copied from documents often carries.
const MINUS_SIGNS: [char; 2] = ['-', '\u{2212}'];

/// A fixed-length unit, in the order ISO 8601 writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Week,
    Day,
    Hour,
    Minute,
    Second,
}

impl Unit {
    fn seconds(self) -> i64 {
        match self {
            Self::Week => WEEK,
            Self::Day => DAY,
            Self::Hour => HOUR,
            Self::Minute => MINUTE,
            Self::Second => 1,
        }
    }

    fn letter(self) -> char {
        match self {
            Self::Week => 'W',
            Self::Day => 'D',
            Self::Hour => 'H',
            Self::Minute => 'M',
            Self::Second => 'S',
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Day => "day",
            Self::Hour => "hour",
            Self::Minute => "minute",
            Self::Second => "second",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Week => "weeks",
            Self::Day => "days",
            Self::Hour => "hours",
            Self::Minute => "minutes",
            Self::Second => "seconds",
        }
    }

    /// Whether the unit belongs after the T.
    fn is_time(self) -> bool {
        matches!(self, Self::Hour | Self::Minute | Self::Second)
    }

    /// "1 hour", "30 minutes".
    fn count(self, amount: i64) -> String {
        if amount == 1 {
            format!("1 {}", self.singular())
        } else {
            format!("{amount} {}", self.plural())
        }
    }
}

/// One number and its designator, as written.
#[derive(Debug)]
struct Token {
    /// The digits before any decimal mark (possibly none: `PT.5H`).
    whole: String,
    /// The digits after a decimal mark, if there was one.
    fraction: Option<String>,
    /// The designator, upper-cased.
    letter: char,
    /// Whether it came after the T.
    in_time: bool,
}

impl Token {
    /// The number as written, for messages.
    fn number(&self) -> String {
        match &self.fraction {
            Some(fraction) => format!("{}.{fraction}", self.whole),
            None => self.whole.clone(),
        }
    }

    /// The unit this designator means, or `None` for years and months.
    ///
    /// `M` before the T means months. When hours or seconds also appear
    /// before the T (`P1H30M`), the writer has simply forgotten the T, and
    /// the `M` is taken for minutes so that the message can say so.
    fn unit(&self, t_forgotten: bool) -> Option<Unit> {
        match self.letter {
            'W' => Some(Unit::Week),
            'D' => Some(Unit::Day),
            'H' => Some(Unit::Hour),
            'M' if self.in_time || t_forgotten => Some(Unit::Minute),
            'S' => Some(Unit::Second),
            _ => None,
        }
    }
}

/// The tokens of what follows the P.
#[derive(Debug)]
struct Lexed {
    tokens: Vec<Token>,
    /// A T was written with nothing after it (`PT`, `P1DT`).
    empty_time: bool,
    /// A second T was written (`P1DT1HT2M`).
    repeated_t: bool,
}

/// Splits what follows the P into numbers with designators, refusing at
/// once what cannot be read at all: unknown letters, stray characters,
/// numbers without a unit and units without a number.
fn lex(input: &str, body: &str) -> Result<Lexed, OffsetError> {
    let mut tokens = Vec::new();
    let mut whole = String::new();
    let mut fraction: Option<String> = None;
    let mut in_time = false;
    let mut t_at = None;
    let mut repeated_t = false;
    for found in body.chars() {
        let upper = found.to_ascii_uppercase();
        let pending = !whole.is_empty() || fraction.is_some();
        match upper {
            '0'..='9' => match &mut fraction {
                Some(fraction) => fraction.push(upper),
                None => whole.push(upper),
            },
            '.' | ',' if fraction.is_none() => fraction = Some(String::new()),
            'T' => {
                if pending {
                    return Err(missing_unit(input, &whole, fraction.as_deref(), in_time));
                }
                if in_time {
                    repeated_t = true;
                } else {
                    in_time = true;
                    t_at = Some(tokens.len());
                }
            }
            'W' | 'D' | 'H' | 'M' | 'S' | 'Y' => {
                if !pending {
                    return Err(OffsetError::MissingNumber {
                        input: quote(input),
                        letter: found,
                        hint: missing_number_hint(upper, in_time),
                    });
                }
                tokens.push(Token {
                    whole: std::mem::take(&mut whole),
                    fraction: fraction.take(),
                    letter: upper,
                    in_time,
                });
            }
            'A'..='Z' => {
                return Err(OffsetError::UnknownUnit {
                    input: quote(input),
                    letter: found,
                });
            }
            c if MINUS_SIGNS.contains(&c) => return Err(negative(input)),
            '+' => return Err(signed(input)),
            _ => {
                return Err(OffsetError::UnexpectedChar {
                    input: quote(input),
                    found,
                });
            }
        }
    }
    if !whole.is_empty() || fraction.is_some() {
        return Err(missing_unit(input, &whole, fraction.as_deref(), in_time));
    }
    let empty_time = t_at == Some(tokens.len());
    Ok(Lexed {
        tokens,
        empty_time,
        repeated_t,
    })
}

/// Checks the tokens against the rules of the subset accepted and adds them
/// up. The order of the checks decides which problem is reported when there
/// are several; it puts first the one whose fix is most likely to fix the
/// rest.
fn check(input: &str, lexed: &Lexed) -> Result<i64, OffsetError> {
    let tokens = &lexed.tokens;
    let quoted = || quote(input);
    if tokens.is_empty() {
        return Err(if lexed.empty_time {
            OffsetError::EmptyTime {
                input: quoted(),
                hint: "hours, minutes and seconds go after the T, e.g. PT1H or PT30M".into(),
            }
        } else {
            OffsetError::MissingAmount { input: quoted() }
        });
    }
    if lexed.empty_time {
        let without_t = input.trim_end_matches(['T', 't']).to_ascii_uppercase();
        return Err(OffsetError::EmptyTime {
            input: quoted(),
            hint: format!("drop the T ({without_t}) or put a time after it, e.g. P1DT12H"),
        });
    }
    if let Some(digits) = tokens
        .iter()
        .map(|token| {
            token
                .whole
                .len()
                .max(token.fraction.as_ref().map_or(0, String::len))
        })
        .find(|&digits| digits > MAX_DIGITS)
    {
        return Err(OffsetError::TooManyDigits {
            input: quoted(),
            digits,
        });
    }
    let t_forgotten = tokens
        .iter()
        .any(|token| !token.in_time && matches!(token.letter, 'H' | 'S'));
    for token in tokens {
        match (token.letter, token.unit(t_forgotten)) {
            ('Y', _) => return Err(OffsetError::Years { input: quoted() }),
            (_, None) => {
                return Err(OffsetError::Months {
                    input: quoted(),
                    amount: token.number(),
                });
            }
            _ => {}
        }
    }
    let units: Vec<Unit> = tokens
        .iter()
        .filter_map(|token| token.unit(t_forgotten))
        .collect();
    let suggestion = || suggest(lenient_total(tokens, t_forgotten));
    for (token, &unit) in tokens.iter().zip(&units) {
        if unit.is_time() != token.in_time {
            let written = format!(
                "{}{}{}",
                if unit.is_time() { "PT" } else { "P" },
                token.number(),
                unit.letter()
            );
            return Err(OffsetError::WrongSide {
                input: quoted(),
                unit: unit.plural(),
                side: if unit.is_time() {
                    "before the T, where only weeks and days go"
                } else {
                    "after the T, where only hours, minutes and seconds go"
                },
                hint: match suggestion() {
                    Some(offset) => format!("write {offset}"),
                    None if BeforeDue::parse(&written).is_ok() => format!("e.g. {written}"),
                    None if unit.is_time() => "e.g. PT1H".into(),
                    None => "e.g. P1D".into(),
                },
            });
        }
    }
    if units.contains(&Unit::Week) && units.iter().any(|&unit| unit != Unit::Week) {
        return Err(OffsetError::MixedWeeks {
            input: quoted(),
            hint: match suggestion() {
                Some(offset) => format!("write {offset}"),
                None => "give it in days instead, e.g. P9D rather than P1W2D".into(),
            },
        });
    }
    if lexed.repeated_t {
        return Err(OffsetError::RepeatedT {
            input: quoted(),
            hint: match suggestion() {
                Some(offset) => format!("so write {offset}"),
                None => "e.g. P1DT1H30M".into(),
            },
        });
    }
    for (index, unit) in units.iter().enumerate() {
        if units[..index].contains(unit) {
            return Err(OffsetError::Repeated {
                input: quoted(),
                unit: unit.plural(),
            });
        }
    }
    for pair in units.windows(2) {
        if let [smaller, larger] = *pair
            && larger < smaller
        {
            return Err(OffsetError::OutOfOrder {
                input: quoted(),
                larger: larger.plural(),
                smaller: smaller.plural(),
                hint: match suggestion() {
                    Some(offset) => format!("so write {offset}"),
                    None => "e.g. P1DT2H30M".into(),
                },
            });
        }
    }
    if tokens.iter().any(|token| token.fraction.is_some()) {
        return Err(OffsetError::Fraction {
            input: quoted(),
            hint: match suggestion() {
                Some(offset) => format!("write {offset}"),
                None => "e.g. PT1H30M rather than PT1.5H, PT12H rather than P0.5D".into(),
            },
        });
    }
    // Every number now has at most ten digits and a fixed unit, so this
    // only fails far beyond the maximum.
    let total = lenient_total(tokens, false).unwrap_or(i64::MAX);
    if total == 0 {
        return Err(OffsetError::Zero { input: quoted() });
    }
    if total > MAX_SECONDS {
        return Err(OffsetError::TooLong { input: quoted() });
    }
    Ok(total)
}

/// What the tokens add up to when each designator is read for what it most
/// likely meant, wherever it was written: the basis of a suggested fix.
/// `None` when that is not a whole number of seconds, or has years or
/// months in it.
fn lenient_total(tokens: &[Token], t_forgotten: bool) -> Option<i64> {
    tokens.iter().try_fold(0_i64, |total, token| {
        let unit = token.unit(t_forgotten)?;
        let seconds = exact_seconds(&token.whole, token.fraction.as_deref().unwrap_or(""), unit)?;
        total.checked_add(seconds)
    })
}

/// `whole.fraction` of `unit` in seconds, if that is a whole number.
fn exact_seconds(whole: &str, fraction: &str, unit: Unit) -> Option<i64> {
    if whole.len() > MAX_DIGITS || fraction.len() > MAX_DIGITS {
        return None;
    }
    let digits = |text: &str| -> Option<i128> {
        if text.is_empty() {
            Some(0)
        } else {
            text.parse().ok()
        }
    };
    let unit_seconds = i128::from(unit.seconds());
    let scale = 10_i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let fraction_seconds = digits(fraction)? * unit_seconds;
    if fraction_seconds % scale != 0 {
        return None;
    }
    i64::try_from(digits(whole)? * unit_seconds + fraction_seconds / scale).ok()
}

/// The offset to suggest for a total, if it is one that would be accepted.
fn suggest(total: Option<i64>) -> Option<BeforeDue> {
    total.and_then(BeforeDue::from_seconds)
}

/// The canonical ISO 8601 form of a positive number of seconds.
fn canonical(seconds: i64) -> String {
    if seconds > 0 && seconds % WEEK == 0 {
        return format!("P{}W", seconds / WEEK);
    }
    let mut iso = String::from("P");
    let days = seconds / DAY;
    if days > 0 {
        iso.push_str(&format!("{days}D"));
    }
    let rest = seconds % DAY;
    if rest > 0 {
        iso.push('T');
        let parts = [
            (rest / HOUR, Unit::Hour),
            (rest % HOUR / MINUTE, Unit::Minute),
            (rest % MINUTE, Unit::Second),
        ];
        for (amount, unit) in parts {
            if amount > 0 {
                iso.push_str(&format!("{amount}{}", unit.letter()));
            }
        }
    }
    iso
}

/// A positive number of seconds in words, shaped like its canonical form:
/// "2 weeks", "1 day 12 hours", "1 hour 30 minutes".
fn describe(seconds: i64) -> String {
    if seconds % WEEK == 0 {
        return Unit::Week.count(seconds / WEEK);
    }
    let mut parts = Vec::new();
    let mut rest = seconds;
    for unit in [Unit::Day, Unit::Hour, Unit::Minute, Unit::Second] {
        let amount = rest / unit.seconds();
        rest %= unit.seconds();
        if amount > 0 {
            parts.push(unit.count(amount));
        }
    }
    parts.join(" ")
}

/// `offset` as a suggestion with its meaning: "PT1H for 1 hour".
fn spelled(offset: BeforeDue) -> String {
    format!("{offset} for {}", describe(offset.seconds))
}

/// "1 month", "2 months": `amount` as written, which may be a fraction.
fn counted(amount: &str, unit: &str) -> String {
    if amount == "1" {
        format!("1 {unit}")
    } else {
        format!("{amount} {unit}s")
    }
}

/// The input as quoted in messages: cut short if long.
fn quote(input: &str) -> String {
    if input.chars().count() <= MAX_QUOTED {
        input.to_owned()
    } else {
        let head: String = input.chars().take(MAX_QUOTED).collect();
        format!("{head}…")
    }
}

/// What the value most likely meant, however it was written: ISO 8601
/// (`PT1H`), a human form (`1h`, `2 days`) or ISO 8601 without its P
/// (`T1H`).
fn guess(text: &str) -> Option<BeforeDue> {
    if let Ok(offset) = BeforeDue::parse(text) {
        return Some(offset);
    }
    match human(text) {
        Some(Human::Seconds(seconds)) => BeforeDue::from_seconds(seconds),
        _ => BeforeDue::parse(&format!("P{text}")).ok(),
    }
}

/// The refusal of a value with a minus sign, with the positive value
/// probably meant.
fn negative(input: &str) -> OffsetError {
    let positive: String = input.replace(MINUS_SIGNS, "");
    let hint = match guess(positive.trim()) {
        Some(offset) => format!(
            "write {offset} for a reminder {} before the due time",
            describe(offset.seconds)
        ),
        None => "e.g. PT1H for a reminder 1 hour before the due time".into(),
    };
    OffsetError::Negative {
        input: quote(input),
        hint,
    }
}

/// The refusal of a value with a plus sign, with the value without it.
fn signed(input: &str) -> OffsetError {
    let unsigned: String = input.replace('+', "");
    let hint = match guess(unsigned.trim()) {
        Some(offset) => format!("write {}", spelled(offset)),
        None => format!("e.g. {EXAMPLES}"),
    };
    OffsetError::Signed {
        input: quote(input),
        hint,
    }
}

/// The refusal of a value that does not start with P, saying what it should
/// have been when that is clear.
fn not_iso(input: &str) -> OffsetError {
    let hint = match human(input) {
        Some(Human::Seconds(seconds)) => match BeforeDue::from_seconds(seconds) {
            Some(offset) => format!("write {} ({GRAMMAR})", spelled(offset)),
            None if seconds > MAX_SECONDS => {
                format!("before_due is at most 366 days (P366D); write e.g. {EXAMPLES}")
            }
            None => format!("write e.g. {EXAMPLES}"),
        },
        Some(Human::Calendar) => "months and years have no fixed length, so give days or weeks \
             instead, e.g. P30D for 30 days or P4W for 4 weeks"
            .into(),
        None => match BeforeDue::parse(&format!("P{input}")) {
            Ok(offset) => format!(
                "it needs a leading P, so write {} ({GRAMMAR})",
                spelled(offset)
            ),
            Err(_) if !input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()) => {
                let n = input.trim_start_matches('0');
                match n.parse::<i64>() {
                    Ok(n @ 1..=MAX_DAYS) => format!(
                        "a number needs a unit, e.g. PT{n}M for {} or P{n}D for {}",
                        Unit::Minute.count(n),
                        Unit::Day.count(n)
                    ),
                    _ => format!("a number needs a unit, e.g. {EXAMPLES}"),
                }
            }
            Err(_) => format!("write e.g. {EXAMPLES}"),
        },
    };
    OffsetError::NotIso {
        input: quote(input),
        hint,
    }
}

/// The hint for a designator without a number: the same designator with
/// one, on the side of the T it was written.
fn missing_number_hint(letter: char, in_time: bool) -> String {
    let example = match (letter, in_time) {
        ('W', false) => "P1W",
        ('D', false) => "P1D",
        ('H', true) => "PT1H",
        ('M', true) => "PT1M",
        ('S', true) => "PT1S",
        _ => return format!("e.g. {EXAMPLES}"),
    };
    format!("e.g. {example}")
}

/// The refusal of a number without a designator, suggesting the units that
/// fit where it was written (with the same number, if that is in range).
fn missing_unit(input: &str, whole: &str, fraction: Option<&str>, in_time: bool) -> OffsetError {
    let number = match fraction {
        Some(fraction) => format!("{whole}.{fraction}"),
        None => whole.to_owned(),
    };
    let amount = whole
        .parse::<i64>()
        .ok()
        .filter(|&n| fraction.is_none() && (1..=MAX_DAYS).contains(&n))
        .unwrap_or(1);
    let hint = if in_time {
        format!(
            "hours, minutes and seconds take H, M or S after the number, e.g. PT{amount}M for {} \
             or PT{amount}H for {}",
            Unit::Minute.count(amount),
            Unit::Hour.count(amount)
        )
    } else {
        format!(
            "days take D after the number, e.g. P{amount}D for {}, and times go after a T, \
             e.g. PT{amount}H for {}",
            Unit::Day.count(amount),
            Unit::Hour.count(amount)
        )
    };
    OffsetError::MissingUnit {
        input: quote(input),
        number: quote(&number),
        hint,
    }
}

/// A duration as people write it.
#[derive(Debug, PartialEq, Eq)]
enum Human {
    /// A fixed length, in seconds (possibly zero or out of range).
    Seconds(i64),
    /// Counts months or years.
    Calendar,
}

/// Reads the ways people (and models) commonly write a duration when not
/// using ISO 8601 — `1h`, `30m`, `2 days`, `1 hour and 30 minutes`,
/// `1.5 hours` — to suggest the ISO 8601 form. `m` is minutes, as in `30m`.
fn human(text: &str) -> Option<Human> {
    let lower = text.to_lowercase();
    let mut rest = lower.as_str();
    let mut total: i64 = 0;
    let mut calendar = false;
    let mut any = false;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if any && let Some(after) = rest.strip_prefix("and ") {
            rest = after.trim_start();
        }
        if rest.is_empty() {
            break;
        }
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let after = after.trim_start();
        let word_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (word, after) = after.split_at(word_end);
        rest = after;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit = match word {
            "w" | "wk" | "wks" | "week" | "weeks" => Unit::Week,
            "d" | "day" | "days" => Unit::Day,
            "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
            "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minute,
            "s" | "sec" | "secs" | "second" | "seconds" => Unit::Second,
            "mo" | "mos" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years" => {
                calendar = true;
                any = true;
                continue;
            }
            _ => return None,
        };
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        total = total.checked_add(exact_seconds(whole, fraction, unit)?)?;
        any = true;
    }
    match (any, calendar) {
        (false, _) => None,
        (true, true) => Some(Human::Calendar),
        (true, false) => Some(Human::Seconds(total)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> BeforeDue {
        BeforeDue::parse(raw).unwrap_or_else(|error| panic!("`{raw}` refused: {error}"))
    }

    fn refused(raw: &str) -> OffsetError {
        match BeforeDue::parse(raw) {
            Ok(offset) => panic!("`{raw}` accepted as {offset}"),
            Err(error) => error,
        }
    }

    /// The valid values a message shows, other than the refused one itself.
    fn examples_in(message: &str, refused: &str) -> Vec<String> {
        message
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| word.starts_with('P') && word.len() > 1)
            .filter(|word| !word.eq_ignore_ascii_case(refused.trim()))
            .filter(|word| BeforeDue::parse(word).is_ok())
            .map(str::to_owned)
            .collect()
    }

    /// Refuses `raw` with a message containing every one of `needles` and at
    /// least one valid example.
    fn assert_refused(raw: &str, needles: &[&str]) -> OffsetError {
        let error = refused(raw);
        let message = error.to_string();
        for needle in needles {
            assert!(
                message.contains(needle),
                "message for `{raw}` lacks `{needle}`: {message}"
            );
        }
        assert!(
            !examples_in(&message, raw).is_empty(),
            "message for `{raw}` gives no valid example: {message}"
        );
        error
    }

    #[test]
    fn accepts_every_form_with_its_seconds_and_canonical_form() {
        let cases: &[(&str, i64, &str)] = &[
            ("PT1H", HOUR, "PT1H"),
            ("PT30M", 30 * MINUTE, "PT30M"),
            ("PT45S", 45, "PT45S"),
            ("PT1S", 1, "PT1S"),
            ("P1D", DAY, "P1D"),
            ("P1DT12H", DAY + 12 * HOUR, "P1DT12H"),
            ("P1DT2H", DAY + 2 * HOUR, "P1DT2H"),
            ("P2W", 2 * WEEK, "P2W"),
            ("P1W", WEEK, "P1W"),
            ("P52W", 52 * WEEK, "P52W"),
            ("PT1H30M", 90 * MINUTE, "PT1H30M"),
            ("PT90M", 90 * MINUTE, "PT1H30M"),
            ("PT1M1S", 61, "PT1M1S"),
            ("PT1H1S", HOUR + 1, "PT1H1S"),
            ("PT59M59S", HOUR - 1, "PT59M59S"),
            ("PT3600S", HOUR, "PT1H"),
            ("PT36H", DAY + 12 * HOUR, "P1DT12H"),
            ("PT24H", DAY, "P1D"),
            ("PT168H", WEEK, "P1W"),
            ("P7D", WEEK, "P1W"),
            ("P14D", 2 * WEEK, "P2W"),
            ("P8D", 8 * DAY, "P8D"),
            ("P6DT24H", WEEK, "P1W"),
            ("P1DT2H3M4S", DAY + 2 * HOUR + 3 * MINUTE + 4, "P1DT2H3M4S"),
            ("P1DT30M", DAY + 30 * MINUTE, "P1DT30M"),
            ("P1DT5S", DAY + 5, "P1DT5S"),
            ("P2DT1H0M0S", 2 * DAY + HOUR, "P2DT1H"),
            ("PT1H0M", HOUR, "PT1H"),
            ("PT0H30M", 30 * MINUTE, "PT30M"),
            ("P0DT1H", HOUR, "PT1H"),
            ("P1DT0S", DAY, "P1D"),
            ("PT01H", HOUR, "PT1H"),
            ("PT0000000001S", 1, "PT1S"),
            ("PT9999999S", 9_999_999, "P115DT17H46M39S"),
            ("P366D", MAX_SECONDS, "P366D"),
            ("PT8784H", MAX_SECONDS, "P366D"),
            ("PT31622400S", MAX_SECONDS, "P366D"),
            ("P365DT24H", MAX_SECONDS, "P366D"),
            ("P365D", 365 * DAY, "P365D"),
            ("pt1h", HOUR, "PT1H"),
            ("Pt1H", HOUR, "PT1H"),
            ("p1dt12h", DAY + 12 * HOUR, "P1DT12H"),
            ("p2w", 2 * WEEK, "P2W"),
            ("pt30m", 30 * MINUTE, "PT30M"),
            ("  PT1H \n", HOUR, "PT1H"),
            ("\tP2W ", 2 * WEEK, "P2W"),
        ];
        for &(raw, seconds, iso) in cases {
            let offset = parsed(raw);
            assert_eq!(offset.seconds(), seconds, "seconds of `{raw}`");
            assert_eq!(offset.to_iso(), iso, "canonical form of `{raw}`");
            assert_eq!(offset.to_string(), iso, "display of `{raw}`");
            assert_eq!(offset.as_duration(), TimeDelta::seconds(seconds));
            assert_eq!(parsed(iso), offset, "`{iso}` parses back");
            assert_eq!(raw.parse::<BeforeDue>(), Ok(offset), "FromStr of `{raw}`");
        }
    }

    /// Every accepted offset's canonical form parses back to it, and is
    /// already canonical.
    fn assert_round_trips(seconds: i64) {
        let offset = BeforeDue { seconds };
        let iso = offset.to_iso();
        assert_eq!(parsed(&iso), offset, "`{iso}` for {seconds}s");
        assert_eq!(parsed(&iso.to_lowercase()), offset, "lower-case `{iso}`");
        assert_eq!(parsed(&iso).to_iso(), iso);
        if seconds % WEEK == 0 {
            assert!(iso.ends_with('W') && !iso.contains('D'), "{iso}");
        } else {
            assert!(!iso.contains('W'), "{iso}");
        }
    }

    #[test]
    fn canonical_forms_round_trip() {
        for seconds in 1..=3 * HOUR {
            assert_round_trips(seconds);
        }
        for days in 1..=MAX_DAYS {
            assert_round_trips(days * DAY);
            assert_round_trips(days * DAY - 1);
            assert_round_trips((days - 1) * DAY + HOUR + 1);
        }
        for weeks in 1..=52 {
            assert_round_trips(weeks * WEEK);
        }
        for seconds in (1..=MAX_SECONDS).step_by(7919) {
            assert_round_trips(seconds);
        }
        assert_round_trips(MAX_SECONDS);
    }

    #[test]
    fn canonical_form_puts_largest_units_first() {
        assert_eq!(canonical(90 * MINUTE), "PT1H30M");
        assert_eq!(canonical(DAY), "P1D");
        assert_eq!(canonical(WEEK), "P1W");
        assert_eq!(canonical(WEEK + DAY), "P8D");
        assert_eq!(canonical(WEEK + HOUR), "P7DT1H");
        assert_eq!(canonical(DAY + 1), "P1DT1S");
        assert_eq!(canonical(HOUR + 1), "PT1H1S");
        assert_eq!(canonical(MAX_SECONDS - 1), "P365DT23H59M59S");
    }

    #[test]
    fn serializes_as_the_canonical_string() {
        let offset = parsed("pt90m");
        assert_eq!(serde_json::to_string(&offset).unwrap(), "\"PT1H30M\"");
        assert_eq!(
            serde_json::to_value([parsed("P14D"), parsed("PT36H")]).unwrap(),
            serde_json::json!(["P2W", "P1DT12H"])
        );
    }

    #[test]
    fn describes_offsets_in_words() {
        assert_eq!(describe(HOUR), "1 hour");
        assert_eq!(describe(90 * MINUTE), "1 hour 30 minutes");
        assert_eq!(describe(2 * WEEK), "2 weeks");
        assert_eq!(describe(DAY + 12 * HOUR), "1 day 12 hours");
        assert_eq!(describe(1), "1 second");
    }

    #[test]
    fn refuses_empty_values() {
        for raw in ["", "   ", "\n\t"] {
            let error = assert_refused(raw, &["empty", "PT1H", "P1D"]);
            assert_eq!(error, OffsetError::Empty);
        }
        let error = assert_refused("P", &["`P`", "no amount", "PT1H"]);
        assert!(matches!(error, OffsetError::MissingAmount { .. }));
        let error = assert_refused("p", &["no amount"]);
        assert!(matches!(error, OffsetError::MissingAmount { .. }));
    }

    #[test]
    fn refuses_a_t_with_nothing_after_it() {
        let error = assert_refused("PT", &["`PT`", "T with nothing after it", "PT1H"]);
        assert!(matches!(error, OffsetError::EmptyTime { .. }));
        let error = assert_refused("P1DT", &["nothing after", "drop the T (P1D)", "P1DT12H"]);
        assert!(matches!(error, OffsetError::EmptyTime { .. }));
        assert_refused("p2dt", &["drop the T (P2D)"]);
    }

    #[test]
    fn refuses_years_and_months_as_having_no_fixed_length() {
        for raw in ["P1Y", "p2y", "P1Y2M", "PT1Y", "P1Y2D"] {
            let error = assert_refused(raw, &["years", "no fixed length", "P365D", "P52W"]);
            assert!(matches!(error, OffsetError::Years { .. }), "{raw}");
        }
        let error = assert_refused(
            "P1M",
            &[
                "months",
                "no fixed length",
                "P30D",
                "P1M is 1 month,",
                "PT1M (with a T) is 1 minute",
            ],
        );
        assert!(matches!(error, OffsetError::Months { .. }));
        assert_refused("P30M", &["P30M is 30 months", "PT30M", "30 minutes"]);
        assert_refused("p1m", &["months", "PT1M"]);
        assert_refused("P1DM", &["`M` with no number"]);
        assert_refused("P2M1D", &["months", "PT2M"]);
    }

    #[test]
    fn refuses_fractions() {
        for (raw, fix) in [
            ("PT1.5H", "write PT1H30M"),
            ("PT1,5H", "write PT1H30M"),
            ("P0.5D", "write PT12H"),
            ("P1.5W", "write P10DT12H"),
            ("PT.5H", "write PT30M"),
            ("PT0.25M", "write PT15S"),
            ("PT0.5S", "PT1H30M rather than PT1.5H"),
            ("PT1.0H", "write PT1H"),
        ] {
            let error = assert_refused(raw, &["fraction", "whole numbers", fix]);
            assert!(matches!(error, OffsetError::Fraction { .. }), "{raw}");
        }
        assert_refused("P1.2.3D", &["`.`"]);
    }

    #[test]
    fn refuses_negative_offsets() {
        for (raw, fix) in [
            ("-PT1H", "write PT1H for a reminder 1 hour before"),
            ("- PT1H", "write PT1H"),
            ("\u{2212}P1D", "write P1D for a reminder 1 day before"),
            ("P-1D", "write P1D"),
            ("PT-30M", "write PT30M"),
            ("-1h", "write PT1H"),
            ("-PT0S", "e.g. PT1H"),
        ] {
            let error = assert_refused(raw, &["negative", "counts back", "always positive", fix]);
            assert!(matches!(error, OffsetError::Negative { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_a_plus_sign() {
        let error = assert_refused("+PT1H", &["plus sign", "always positive", "write PT1H"]);
        assert!(matches!(error, OffsetError::Signed { .. }));
        assert_refused("PT+1H", &["plus sign", "write PT1H"]);
    }

    #[test]
    fn refuses_zero() {
        for raw in ["PT0S", "P0D", "P0W", "PT0H0M", "P0DT0H0M0S", "pt00m"] {
            let error = assert_refused(raw, &["zero", "remind_at", "due time"]);
            assert!(matches!(error, OffsetError::Zero { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_more_than_366_days() {
        for raw in [
            "P367D",
            "P53W",
            "PT8785H",
            "P366DT1S",
            "PT31622401S",
            "P9999999999W",
            "P9999999999DT9999999999H9999999999M9999999999S",
        ] {
            let error = assert_refused(raw, &["366 days", "P366D"]);
            assert!(matches!(error, OffsetError::TooLong { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_numbers_of_more_than_ten_digits() {
        for raw in ["PT12345678901S", "P00000000001D", "PT1.12345678901H"] {
            let error = assert_refused(raw, &["11 digits", "10 allowed", "P366D"]);
            assert!(matches!(error, OffsetError::TooManyDigits { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_repeated_designators() {
        for (raw, unit) in [
            ("PT1H2H", "hours"),
            ("P1D2D", "days"),
            ("PT1S1S", "seconds"),
            ("PT1M2M", "minutes"),
            ("P1W1W", "weeks"),
            ("PT1H2M3H", "hours"),
        ] {
            let error = assert_refused(raw, &[&format!("gives {unit} twice"), "once"]);
            assert!(matches!(error, OffsetError::Repeated { .. }), "{raw}");
        }
        let error = assert_refused("P1DT1HT2M", &["more than one T", "so write P1DT1H2M"]);
        assert!(matches!(error, OffsetError::RepeatedT { .. }));
    }

    #[test]
    fn refuses_units_out_of_order() {
        for (raw, order, fix) in [
            ("PT1M1H", "hours after minutes", "write PT1H1M"),
            ("PT1S1M", "minutes after seconds", "write PT1M1S"),
            ("PT30S2H", "hours after seconds", "write PT2H30S"),
            ("P1DT1S1H", "hours after seconds", "write P1DT1H1S"),
        ] {
            let error = assert_refused(raw, &[order, "largest to smallest", fix]);
            assert!(matches!(error, OffsetError::OutOfOrder { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_units_on_the_wrong_side_of_the_t() {
        for (raw, unit, fix) in [
            ("P1H", "hours before the T", "write PT1H"),
            ("P1S", "seconds before the T", "write PT1S"),
            ("P1H30M", "hours before the T", "write PT1H30M"),
            ("P1D2H", "hours before the T", "write P1DT2H"),
            ("PT1D", "days after the T", "write P1D"),
            ("PT2W", "weeks after the T", "write P2W"),
            ("PT1H1D", "days after the T", "write P1DT1H"),
            ("P999H", "hours before the T", "write P41DT15H"),
            ("P9999H", "hours before the T", "e.g. PT1H"),
            ("PT400D", "days after the T", "e.g. P1D"),
        ] {
            let error = assert_refused(raw, &[unit, fix]);
            assert!(matches!(error, OffsetError::WrongSide { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_weeks_mixed_with_other_units() {
        for (raw, fix) in [
            ("P1W2D", "P9D"),
            ("P1WT1H", "P7DT1H"),
            ("P1W7D", "P2W"),
            ("P2D1W", "P9D"),
            ("P52W2D", "P366D"),
            ("P52W3D", "P9D rather than P1W2D"),
        ] {
            let error = assert_refused(raw, &["combines weeks", "does not allow", fix]);
            assert!(matches!(error, OffsetError::MixedWeeks { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_unknown_letters() {
        for (raw, letter) in [("PT1X", "`X`"), ("P1q", "`q`"), ("P1DT1Z", "`Z`")] {
            let error = assert_refused(raw, &[letter, "not a unit", "P1DT12H"]);
            assert!(matches!(error, OffsetError::UnknownUnit { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_numbers_without_designators() {
        for (raw, needles) in [
            ("PT30", &["number 30", "no unit", "PT30M", "30 minutes"][..]),
            ("P30", &["number 30", "P30D", "30 days"]),
            ("P1DT2", &["number 2", "PT2M"]),
            ("P1T2H", &["number 1", "P1D"]),
            ("P400", &["number 400", "P1D"]),
            ("PT1.5", &["number 1.5", "PT1M"]),
        ] {
            let error = assert_refused(raw, needles);
            assert!(matches!(error, OffsetError::MissingUnit { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_designators_without_numbers() {
        for (raw, needles) in [
            ("PTH", &["`H` with no number", "PT1H"][..]),
            ("PD", &["`D` with no number", "P1D"]),
            ("PT1HM", &["`M` with no number", "PT1M"]),
            ("PW", &["`W`", "P1W"]),
            ("PTD", &["`D`", "P1D"]),
        ] {
            let error = assert_refused(raw, needles);
            assert!(matches!(error, OffsetError::MissingNumber { .. }), "{raw}");
        }
    }

    #[test]
    fn refuses_stray_characters_and_spaces() {
        for (raw, found) in [
            ("PT1:30", "`:`"),
            ("P1D!", "`!`"),
            ("PT1H\u{1F600}", "`\u{1F600}`"),
            ("P1\u{0414}", "`\u{0414}`"),
        ] {
            let error = assert_refused(raw, &[found, "does not belong"]);
            assert!(matches!(error, OffsetError::UnexpectedChar { .. }), "{raw}");
        }
        for (raw, fix) in [
            ("PT1H 30M", "write PT1H30M"),
            ("P 1D", "write P1D"),
            ("P1 hour", "PT1H"),
        ] {
            let error = assert_refused(raw, &["space", fix]);
            assert!(matches!(error, OffsetError::Whitespace { .. }), "{raw}");
        }
    }

    #[test]
    fn hints_the_iso_form_of_human_durations() {
        for (raw, fix) in [
            ("1h", "write PT1H for 1 hour"),
            ("1H", "write PT1H for 1 hour"),
            ("30m", "write PT30M for 30 minutes"),
            ("2 days", "write P2D for 2 days"),
            ("1 day", "write P1D for 1 day"),
            ("1 hour", "write PT1H for 1 hour"),
            ("1h30m", "write PT1H30M for 1 hour 30 minutes"),
            ("1h 30m", "write PT1H30M"),
            ("1 hour and 30 minutes", "write PT1H30M"),
            ("1 hour, 30 minutes", "write PT1H30M"),
            ("90 min", "write PT1H30M"),
            ("1.5 hours", "write PT1H30M"),
            ("2 weeks", "write P2W for 2 weeks"),
            ("36 hrs", "write P1DT12H for 1 day 12 hours"),
            ("45 seconds", "write PT45S"),
            ("1D", "write P1D for 1 day"),
            ("T1H", "leading P, so write PT1H"),
            ("t30m", "leading P, so write PT30M"),
            ("1DT2H", "leading P, so write P1DT2H"),
            ("2 months", "no fixed length"),
            ("1 year", "no fixed length"),
            (
                "30",
                "a number needs a unit, e.g. PT30M for 30 minutes or P30D for 30 days",
            ),
            ("0", "a number needs a unit, e.g. PT1H"),
            ("400 days", "at most 366 days (P366D)"),
            ("0h", "write e.g. PT1H"),
            ("tomorrow", "write e.g. PT1H"),
            ("01:30:00", "write e.g. PT1H"),
            ("an hour", "write e.g. PT1H"),
        ] {
            let error = assert_refused(raw, &["is not an ISO 8601 duration", fix]);
            assert!(matches!(error, OffsetError::NotIso { .. }), "{raw}");
        }
        let message = refused("1h").to_string();
        assert!(
            message.starts_with("`1h` is not an ISO 8601 duration: write PT1H for 1 hour"),
            "{message}"
        );
        assert!(message.contains("P1D is 1 day"), "{message}");
    }

    #[test]
    fn quotes_long_values_cut_short() {
        let long = format!("P{}", "1".repeat(200));
        let message = refused(&long).to_string();
        assert!(message.contains('…'), "{message}");
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn reads_human_forms() {
        assert_eq!(human("1h"), Some(Human::Seconds(HOUR)));
        assert_eq!(human("2 Days"), Some(Human::Seconds(2 * DAY)));
        assert_eq!(human("1 week 2 days"), Some(Human::Seconds(9 * DAY)));
        assert_eq!(human("1 month"), Some(Human::Calendar));
        assert_eq!(human("0.1 s"), None);
        assert_eq!(human("hour"), None);
        assert_eq!(human("1 fortnight"), None);
        assert_eq!(human(""), None);
    }
}
