//! Rules for free text that the parsers check and the schemas state, each
//! written once as character ranges so that the two cannot drift: what a
//! control character is, what counts as blank, and the JSON Schema patterns
//! built from them.

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

/// The line breaks and tab that multi-line text may hold.
const LAYOUT: [char; 3] = ['\t', '\n', '\r'];

/// A regex character class (ECMA-262 and Python alike) of `ranges`, less
/// the characters in `except`.
fn class(ranges: &[(char, char)], except: &[char]) -> String {
    let escape = |c: char| format!("\\u{:04X}", u32::from(c));
    let mut class = String::from("[^");
    for &(first, last) in ranges {
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

/// One line of text with something in it: no control characters, at least
/// one character that is not white space.
pub fn one_line_pattern() -> String {
    let any = class(CONTROL, &[]);
    let visible = class(BLANK_OR_CONTROL, &[]);
    format!("^{any}*{visible}{any}*$")
}

/// Text that may span lines: no control characters but tabs and line breaks.
pub fn multi_line_pattern() -> String {
    format!("^{}*$", class(CONTROL, &LAYOUT))
}

/// Whether `text` holds control characters other than tabs and line breaks.
pub fn has_control_besides_layout(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !LAYOUT.contains(&c))
}

/// Whether `text` is empty or all white space.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(ranges: &[(char, char)], c: char) -> bool {
        ranges
            .iter()
            .any(|&(first, last)| (first..=last).contains(&c))
    }

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
    }

    #[test]
    fn patterns_read_as_expected() {
        assert_eq!(
            multi_line_pattern(),
            "^[^\\u0000-\\u0008\\u000B-\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
        );
        assert!(
            one_line_pattern().starts_with("^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020")
        );
    }
}
