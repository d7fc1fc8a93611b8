//! A small JSON writer for `--json` output.
//!
//! Values are built as a [`Json`] tree and written compactly (no spaces, no
//! newlines) by its `Display`. Strings are escaped as RFC 8259 requires:
//! `"` and `\` with a backslash, control characters below U+0020 as `\n`,
//! `\t`, … or `\u00XX`; U+2028 and U+2029 are escaped as well, so the output
//! is also valid JavaScript. Everything else, non-ASCII included, is written
//! as UTF-8. Numbers that JSON cannot hold (NaN, infinities) are written as
//! `null`.

use std::fmt::{self, Write};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An unsigned integer, written exactly.
    UInt(u64),
    /// A floating-point number; NaN and infinities are written as `null`.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; keys keep the order given.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs, in that order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// `value`, or `null` when it is `None`.
    pub fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> Json) -> Json {
        value.map_or(Json::Null, f)
    }
}

/// Writes `s` as a quoted, escaped JSON string.
pub fn write_str(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::UInt(n) => write!(f, "{n}"),
            // `{:?}` of a finite f64 is the shortest form that reads back
            // exactly, and always valid JSON (`1.0`, `1e-7`, `1e21`).
            Json::Float(x) if x.is_finite() => write!(f, "{x:?}"),
            Json::Float(_) => f.write_str("null"),
            Json::Str(s) => write_str(f, s),
            Json::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Json::Object(pairs) => {
                f.write_char('{')?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let s = Json::str("a\"b\\c\nd\te\u{1}f\u{7f}é\u{2028}/");
        assert_eq!(s.to_string(), r#""a\"b\\c\nd\te\u0001f"#.to_string() + "\u{7f}é\\u2028/\"");
        assert_eq!(Json::str("\r\u{8}\u{c}\u{1f}").to_string(), r#""\r\b\f\u001f""#);
    }

    #[test]
    fn json_values_are_written_compactly() {
        let v = Json::object([
            ("n", Json::UInt(u64::MAX)),
            ("x", Json::Float(1.5)),
            ("whole", Json::Float(2.0)),
            ("tiny", Json::Float(1e-9)),
            ("nan", Json::Float(f64::NAN)),
            ("inf", Json::Float(f64::INFINITY)),
            ("b", Json::Bool(false)),
            ("none", Json::opt(None::<u32>, |n| Json::UInt(n.into()))),
            ("list", Json::Array(vec![Json::Null, Json::str("k\"ey")])),
            ("empty", Json::Array(vec![])),
            ("obj", Json::object(Vec::<(String, Json)>::new())),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"n":18446744073709551615,"x":1.5,"whole":2.0,"tiny":1e-9,"nan":null,"inf":null,"b":false,"none":null,"list":[null,"k\"ey"],"empty":[],"obj":{}}"#
        );
    }

    #[test]
    fn json_keys_are_escaped() {
        let v = Json::object([("a\"\n", Json::Null)]);
        assert_eq!(v.to_string(), r#"{"a\"\n":null}"#);
    }
}
