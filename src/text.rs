//! Rules for free text: the one place where untrusted text is judged. The
//! parsers call [`judge_line`] and [`judge_lines`]; the schemas state the same
//! rules through the patterns built here from the same character ranges, so
//! the two cannot drift. Text is refused when it would show something other
//! than what it is: control characters, line separators in one line,
//! direction overrides that reorder what a listing shows, and text with
//! nothing visible in it. Anything quoted back in an error is cut by
//! [`shorten`], so that a huge input cannot make a huge answer.

/// Unicode's control characters (category Cc): what `char::is_control` means.
const CONTROL: &[(char, char)] = &[('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];

/// Control characters and white space together: what neither
/// `char::is_control` nor `char::is_whitespace` rules out.
const BLANK_OR_CONTROL: &[(char, char)] = &[
    ('\u{0}', '\u{20}'),
    ('\u{7f}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// LINE SEPARATOR and PARAGRAPH SEPARATOR: white space that breaks a line.
const LINE_SEPARATORS: &[(char, char)] = &[('\u{2028}', '\u{2029}')];

/// The bidirectional formatting characters that reorder the text after them
/// (embeddings, overrides and isolates, the "Trojan Source" set): with them a
/// title can display in another order than it reads. The marks (LRM, RLM,
/// ALM) only nudge neutral characters and are allowed, for mixed scripts.
const BIDI_CONTROLS: &[(char, char)] = &[('\u{202a}', '\u{202e}'), ('\u{2066}', '\u{2069}')];

/// Unicode's Default_Ignorable_Code_Point in the Basic Multilingual Plane:
/// characters a renderer draws as nothing (zero-width spaces and joiners, the
/// byte-order mark, word joiners, variation selectors, Hangul fillers, …).
/// Text of only these and white space shows nothing. (The astral ones, such
/// as the tag characters, are left out: a JSON Schema pattern that ECMA-262
/// and Python read alike cannot name them, and the schema must say exactly
/// what the server refuses.)
const INVISIBLE: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
];

/// The line breaks and tab that multi-line text may hold.
const LAYOUT: [char; 3] = ['\t', '\n', '\r'];

fn within(ranges: &[(char, char)], c: char) -> bool {
    ranges
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// Why a piece of text was refused; `Display` says it for the caller (after
/// the field's name: "title must …").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextFault {
    #[error("must not contain control characters (found U+{:04X})", u32::from(*.0))]
    Control(char),
    #[error(
        "must be a single line: U+{:04X} ({}) breaks it",
        u32::from(*.0),
        if *.0 == '\u{2028}' { "LINE SEPARATOR" } else { "PARAGRAPH SEPARATOR" }
    )]
    LineSeparator(char),
    #[error(
        "must not contain U+{:04X} ({}): a direction control makes text display in another \
         order than it reads; send the text as it should read",
        u32::from(*.0),
        bidi_name(*.0)
    )]
    BidiControl(char),
    #[error("must not be blank")]
    Blank,
    #[error(
        "has nothing visible in it (only invisible characters such as U+{:04X}); send text a \
         person can read",
        u32::from(*.0)
    )]
    Invisible(char),
}

fn bidi_name(c: char) -> &'static str {
    match c {
        '\u{202a}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202b}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202c}' => "POP DIRECTIONAL FORMATTING",
        '\u{202d}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202e}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        _ => "POP DIRECTIONAL ISOLATE",
    }
}

/// Judges one line of text that must show something: no control characters,
/// no line separators, no direction controls, and at least one visible
/// character. What [`one_line_pattern`] states.
pub fn judge_line(raw: &str) -> Result<(), TextFault> {
    for c in raw.chars() {
        if c.is_control() {
            return Err(TextFault::Control(c));
        }
        if within(LINE_SEPARATORS, c) {
            return Err(TextFault::LineSeparator(c));
        }
        if within(BIDI_CONTROLS, c) {
            return Err(TextFault::BidiControl(c));
        }
    }
    visible(raw)
}

/// Judges text that may span lines (notes): tabs and line breaks are allowed,
/// other control characters and direction controls are not. Blank text is
/// allowed (it means none). What [`multi_line_pattern`] states.
pub fn judge_lines(raw: &str) -> Result<(), TextFault> {
    for c in raw.chars() {
        if c.is_control() && !LAYOUT.contains(&c) {
            return Err(TextFault::Control(c));
        }
        if within(BIDI_CONTROLS, c) {
            return Err(TextFault::BidiControl(c));
        }
    }
    Ok(())
}

/// Blank (only white space) or invisible (white space and characters drawn
/// as nothing) text is refused.
fn visible(raw: &str) -> Result<(), TextFault> {
    if raw.chars().all(char::is_whitespace) {
        return Err(TextFault::Blank);
    }
    match raw.chars().find(|&c| within(INVISIBLE, c)) {
        Some(first)
            if raw
                .chars()
                .all(|c| c.is_whitespace() || within(INVISIBLE, c)) =>
        {
            Err(TextFault::Invisible(first))
        }
        _ => Ok(()),
    }
}

/// A value quoted back in an error message, cut so that a huge input does not
/// make a huge error.
pub fn shorten(value: &str) -> String {
    shorten_to(value, 40)
}

/// `value` cut after `max` characters (an ellipsis marks the cut).
pub fn shorten_to(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        value.to_owned()
    } else {
        let head: String = value.chars().take(max).collect();
        format!("{head}…")
    }
}

/// A regex character class (ECMA-262 and Python alike) of everything but the
/// characters in `sets`, less the characters in `except`.
fn class(sets: &[&[(char, char)]], except: &[char]) -> String {
    let escape = |c: char| format!("\\u{:04X}", u32::from(c));
    let mut class = String::from("[^");
    for &(first, last) in sets.iter().flat_map(|set| set.iter()) {
        let mut start = None;
        for c in first..=last {
            match (except.contains(&c), start) {
                (false, None) => start = Some(c),
                (true, Some(from)) => {
                    class.push_str(&span(from, prev(c), escape));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(from) = start {
            class.push_str(&span(from, last, escape));
        }
    }
    class.push(']');
    class
}

fn prev(c: char) -> char {
    char::from_u32(u32::from(c) - 1).unwrap_or(c)
}

fn span(from: char, to: char, escape: impl Fn(char) -> String) -> String {
    if from == to {
        escape(from)
    } else {
        format!("{}-{}", escape(from), escape(to))
    }
}

/// What [`judge_line`] accepts, as a pattern: characters that are neither
/// control characters, line separators nor direction controls, at least one
/// of them neither white space nor invisible.
pub fn one_line_pattern() -> String {
    let any = class(&[CONTROL, LINE_SEPARATORS, BIDI_CONTROLS], &[]);
    let visible = class(&[BLANK_OR_CONTROL, INVISIBLE], &[]);
    format!("^{any}*{visible}{any}*$")
}

/// What [`judge_lines`] accepts, as a pattern: no control characters but tabs
/// and line breaks, no direction controls.
pub fn multi_line_pattern() -> String {
    format!("^{}*$", class(&[CONTROL, BIDI_CONTROLS], &LAYOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranges the patterns are built from mean what the parsers check.
    #[test]
    fn the_ranges_match_the_standard_library() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(within(CONTROL, c), c.is_control(), "{c:?}");
            assert_eq!(
                within(BLANK_OR_CONTROL, c),
                c.is_control() || c.is_whitespace(),
                "{c:?}"
            );
        }
        assert!(
            BIDI_CONTROLS
                .iter()
                .all(|&(a, b)| within(INVISIBLE, a) && within(INVISIBLE, b))
        );
    }

    #[test]
    fn patterns_read_as_expected() {
        assert_eq!(
            multi_line_pattern(),
            "^[^\\u0000-\\u0008\\u000B-\\u000C\\u000E-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$"
        );
        assert!(
            one_line_pattern().starts_with(
                "^[^\\u0000-\\u001F\\u007F-\\u009F\\u2028-\\u2029\\u202A-\\u202E\\u2066-\\u2069]*[^\\u0000-\\u0020"
            ),
            "{}",
            one_line_pattern()
        );
    }

    #[test]
    fn lines_that_lie_about_themselves_are_refused() {
        assert_eq!(judge_line("Buy milk"), Ok(()));
        assert_eq!(
            judge_line("\u{200b}"),
            Err(TextFault::Invisible('\u{200b}'))
        );
        assert_eq!(
            judge_line("\u{feff}\u{2060}"),
            Err(TextFault::Invisible('\u{feff}'))
        );
        assert_eq!(
            judge_line(" \u{200d} "),
            Err(TextFault::Invisible('\u{200d}'))
        );
        assert_eq!(
            judge_line("invoice\u{202e}fdp.exe"),
            Err(TextFault::BidiControl('\u{202e}'))
        );
        assert_eq!(
            judge_line("a\u{2069}"),
            Err(TextFault::BidiControl('\u{2069}'))
        );
        assert_eq!(
            judge_line("one\u{2028}two"),
            Err(TextFault::LineSeparator('\u{2028}'))
        );
        assert_eq!(judge_line("tab\there"), Err(TextFault::Control('\t')));
        assert_eq!(judge_line("   "), Err(TextFault::Blank));
        // Visible text may carry joiners and marks (emoji sequences, mixed
        // scripts).
        assert_eq!(judge_line("👩\u{200d}💻 code"), Ok(()));
        assert_eq!(judge_line("שלום \u{200f}abc"), Ok(()));
        assert!(
            TextFault::BidiControl('\u{202e}')
                .to_string()
                .contains("RIGHT-TO-LEFT OVERRIDE")
        );
    }

    #[test]
    fn notes_keep_their_lines_but_not_direction_controls() {
        assert_eq!(judge_lines("line one\nline two\ttabbed"), Ok(()));
        assert_eq!(judge_lines(""), Ok(()));
        assert_eq!(
            judge_lines("x\u{202d}y"),
            Err(TextFault::BidiControl('\u{202d}'))
        );
        assert_eq!(judge_lines("bell\u{7}"), Err(TextFault::Control('\u{7}')));
    }

    /// The patterns accept exactly what the judges accept.
    #[test]
    fn patterns_and_judges_agree() {
        let line = regex::Regex::new(&one_line_pattern()).unwrap();
        let lines = regex::Regex::new(&multi_line_pattern()).unwrap();
        let samples = [
            "Buy milk",
            "\u{200b}",
            "\u{feff}\u{2060}",
            "a\u{202e}b",
            "one\u{2028}two",
            " ",
            "x\ny",
            "\u{3164}",
            "ok\u{200b}",
            "\u{a0}",
            "é",
            "a\u{2066}b",
            "\u{ad}x",
            "\t",
            "\u{200f}",
            "a\u{200f}",
            "",
        ];
        for sample in samples {
            assert_eq!(
                line.is_match(sample),
                judge_line(sample).is_ok(),
                "{sample:?}"
            );
            assert_eq!(
                lines.is_match(sample),
                judge_lines(sample).is_ok(),
                "{sample:?}"
            );
        }
    }
}
