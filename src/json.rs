//! The one JSON parser for answers from a server. `serde_json` on its own keeps the last of
//! two equal keys, so `{"state":"Closed","state":"In Progress"}` would read as In Progress
//! and `{"result":[],"result":[…]}` as a record. Here a key that appears twice in one object,
//! at any depth, makes the whole answer unreadable: the backends then treat it as a bad
//! response, which is denied in both fail modes.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::secret::Secret;

/// Why an answer is not the JSON the module accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON at all (syntax, truncation, trailing data, nesting deeper than 128).
    Syntax,
    /// An object names this key twice (the key is sanitised, since it came from a server).
    DuplicateKey(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax => write!(f, "the body is not JSON"),
            JsonError::DuplicateKey(key) => {
                write!(f, "the body names the key \"{key}\" twice in one object")
            }
        }
    }
}

/// Parses a whole document, refusing any object with a duplicate key.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictValue {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (_, Some(key)) => Err(JsonError::DuplicateKey(crate::sanitise::sanitise(&key))),
        (Ok(value), None) => Ok(value),
        (Err(_), None) => Err(JsonError::Syntax),
    }
}

/// A document that must be exactly one JSON string (a PVWA logon token, a retrieved
/// password), moved into a [`Secret`] without another copy of the text being made.
///
/// serde_json decodes a string that holds escapes into a scratch buffer of its own, which
/// it frees unwiped; a string without escapes is read in place from `bytes`.
pub fn parse_secret_string(bytes: &[u8]) -> Result<Option<Secret>, JsonError> {
    match parse(bytes)? {
        Value::String(text) => Ok(Some(Secret::from_string(text))),
        mut other => {
            // Not a string: whatever it holds is wiped all the same.
            wipe_strings(&mut other);
            Ok(None)
        }
    }
}

/// Zeroes every string inside a value (keys are left alone: they are field names).
pub fn wipe_strings(value: &mut Value) {
    use zeroize::Zeroize;
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        Value::Object(map) => map.values_mut().for_each(wipe_strings),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Builds a [`Value`] like serde_json's own, but notes the first duplicate key and fails.
#[derive(Clone, Copy)]
struct StrictValue<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate keys")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let message = format!("duplicate key {key:?}");
                *self.duplicate.borrow_mut() = Some(key);
                return Err(serde::de::Error::custom(message));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"result":[{"number":"INC1","state":{"display_value":"New","value":"1"},
            "n":-3,"f":1.5,"big":18446744073709551615,"t":true,"z":null}],"order":["b","a"]}"#;
        let strict = parse(text.as_bytes()).expect("valid");
        let loose: Value = serde_json::from_str(text).expect("valid");
        assert_eq!(strict, loose);
        assert_eq!(parse(b" \"tok\" "), Ok(json!("tok")));
        // Key order is kept (preserve_order), as serde_json's own Value keeps it.
        let keys: Vec<&String> = strict["result"][0]
            .as_object()
            .expect("object")
            .keys()
            .collect();
        assert_eq!(keys, ["number", "state", "n", "f", "big", "t", "z"]);
    }

    #[test]
    fn a_duplicate_key_at_any_depth_is_refused() {
        for (body, key) in [
            (r#"{"state":{"value":"7"},"state":{"value":"2"}}"#, "state"),
            (r#"{"result":[],"result":[{"number":"INC1"}]}"#, "result"),
            (
                r#"{"result":[{"number":"INC1","state":"7","state":"2"}]}"#,
                "state",
            ),
            (r#"[[[{"a":{"b":1,"b":2}}]]]"#, "b"),
            // Escapes are decoded before keys are compared.
            (r#"{"state":"7","st\u0061te":"2"}"#, "state"),
        ] {
            assert_eq!(
                parse(body.as_bytes()),
                Err(JsonError::DuplicateKey(key.to_string())),
                "{body}"
            );
        }
        // The same key in two different objects is fine.
        assert!(parse(br#"[{"a":1},{"a":2}]"#).is_ok());
        assert!(parse(br#"{"a":{"a":{"a":1}}}"#).is_ok());
    }

    #[test]
    fn a_duplicate_key_is_named_sanitised() {
        let body = "{\"s\u{202e}\\u0007x\":1,\"s\u{202e}\\u0007x\":2}";
        assert_eq!(
            parse(body.as_bytes()),
            Err(JsonError::DuplicateKey("s x".to_string()))
        );
    }

    #[test]
    fn anything_but_one_json_document_is_refused() {
        for body in [
            &b""[..],
            b"<html>",
            b"{\"a\":1",
            b"{\"a\":1} {\"b\":2}",
            b"{\"a\":1}x",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(body), Err(JsonError::Syntax), "{body:?}");
        }
        // serde_json's recursion limit still holds: no stack overflow on deep nesting.
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::Syntax));
    }

    #[test]
    fn a_secret_string_is_a_json_string_only() {
        let token = parse_secret_string(b"\"tok-1\"").expect("JSON");
        assert_eq!(token.as_ref().and_then(Secret::as_str), Some("tok-1"));
        assert_eq!(
            parse_secret_string(b"{\"a\":\"b\"}").map(|s| s.is_none()),
            Ok(true)
        );
        assert!(parse_secret_string(b"tok-1").is_err());
    }

    #[test]
    fn wipe_strings_zeroes_every_string() {
        let mut value = json!({"password": "hunter2", "list": ["a", {"b": "c"}], "n": 1});
        wipe_strings(&mut value);
        assert_eq!(
            value,
            json!({"password": "", "list": ["", {"b": ""}], "n": 1})
        );
    }
}
