//! Names for enum members whose values are not identifiers.
//!
//! Client generators turn each enum value into a constant. Values such as the
//! time zones `GMT+0`, `GMT-0` and `GMT0` lose their punctuation on the way
//! and collide (openapi-python-client refuses the whole document; others keep
//! one and silently drop the rest). `x-enum-varnames`, which
//! openapi-python-client and openapi-generator both honour, names each member
//! explicitly; the names are made here, once, for every such enum in the
//! document, and a collision is an error at generation time rather than in an
//! integrator's build.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::SpecError;

/// Adds `x-enum-varnames` to every string enum with a member that is not
/// already a plain identifier.
pub fn name_enum_members(doc: &mut Value) -> Result<(), SpecError> {
    match doc {
        Value::Object(object) => {
            if let Some(Value::Array(values)) = object.get("enum")
                && let Some(names) = member_names(values)?
            {
                object.insert("x-enum-varnames".into(), json!(names));
            }
            object.values_mut().try_for_each(name_enum_members)
        }
        Value::Array(items) => items.iter_mut().try_for_each(name_enum_members),
        _ => Ok(()),
    }
}

/// The names of an enum's members, or `None` when every member is a string
/// that already names itself, or the enum is not of strings alone.
fn member_names(values: &[Value]) -> Result<Option<Vec<String>>, SpecError> {
    let strings: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    if strings.len() != values.len() || strings.iter().all(|s| is_identifier(s)) {
        return Ok(None);
    }
    let mut seen = BTreeSet::new();
    let mut names = Vec::with_capacity(strings.len());
    for value in strings {
        let name = member_name(value);
        // Generators compare names case-insensitively after their own
        // snake-casing; compare the same way here.
        if !seen.insert(name.to_ascii_lowercase().replace('_', "")) {
            return Err(SpecError::EnumNameClash {
                value: value.to_owned(),
                name,
            });
        }
        names.push(name);
    }
    Ok(Some(names))
}

fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `Etc/GMT+1` → `ETC_GMT_PLUS_1`, `Etc/GMT-1` → `ETC_GMT_MINUS_1`,
/// `America/Port-au-Prince` → `AMERICA_PORT_AU_PRINCE`: the sign of an
/// offset is kept in words, since it is all that tells those apart.
fn member_name(value: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let sign = match c {
            '+' => Some("PLUS"),
            '-' if chars.peek().is_some_and(char::is_ascii_digit) => Some("MINUS"),
            _ => None,
        };
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_uppercase());
            continue;
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if let Some(sign) = sign {
            words.push(sign.to_owned());
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let name = words.join("_");
    if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name
    } else {
        format!("VALUE_{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_keep_their_sign_and_punctuation_becomes_separators() {
        assert_eq!(member_name("Etc/GMT+1"), "ETC_GMT_PLUS_1");
        assert_eq!(member_name("Etc/GMT-1"), "ETC_GMT_MINUS_1");
        assert_eq!(member_name("GMT-0"), "GMT_MINUS_0");
        assert_eq!(member_name("GMT0"), "GMT0");
        assert_eq!(
            member_name("America/Port-au-Prince"),
            "AMERICA_PORT_AU_PRINCE"
        );
        assert_eq!(member_name("1h"), "VALUE_1H");
    }

    #[test]
    fn every_time_zone_gets_a_name_of_its_own() {
        let values: Vec<Value> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| json!(tz.name()))
            .collect();
        let names = member_names(&values)
            .expect("no two zones share a name")
            .expect("zones need names");
        assert_eq!(names.len(), values.len());
    }

    #[test]
    fn enums_of_identifiers_are_left_as_they_are() {
        let mut doc = json!({ "a": { "enum": ["open", "done"] }, "b": { "enum": ["a-b", "c"] } });
        name_enum_members(&mut doc).expect("names");
        assert!(doc["a"].get("x-enum-varnames").is_none());
        assert_eq!(doc["b"]["x-enum-varnames"], json!(["A_B", "C"]));
    }

    #[test]
    fn names_that_would_collide_are_an_error() {
        let mut doc = json!({ "enum": ["a-b", "a_b"] });
        assert!(matches!(
            name_enum_members(&mut doc),
            Err(SpecError::EnumNameClash { .. })
        ));
    }
}
