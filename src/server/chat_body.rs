//! [`ChatBody`]: the JSON body of a chat request (Chat Completions, Messages, Responses), kept
//! within a small multiple of its size in memory.
//!
//! A `serde_json::Value` costs about 800 bytes per small object (a B-tree node, its keys and
//! values), so a 3.4 MB body of 100,000 one-letter messages became 85 MB, per request, for as
//! long as the request lived. Here the top-level fields are parsed as usual, except the one
//! long list of a request (`messages`, or the Responses `input`), which stays in the body's
//! bytes as the byte range of each element: 16 bytes per element. The parsers read the list one
//! element at a time, each parsed into a small `Value` and turned into the internal model right
//! away, so the request never exists as one big tree. The list's length is checked against
//! `MAX_MESSAGES` before anything else is parsed: a clear 400, at no cost.

use std::ops::Range;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::Value;
use serde_json::value::RawValue;

use super::AppState;
use super::error::ApiError;
use super::extract::body_bytes;

/// The top-level fields whose arrays are read one element at a time.
const LISTS: [&str; 2] = ["messages", "input"];

/// A request body: its bytes, its small fields parsed, its list kept as element ranges.
#[derive(Debug)]
pub struct ChatBody {
    bytes: Bytes,
    fields: serde_json::Map<String, Value>,
    /// `(name, ranges of its elements in bytes)` for each of [`LISTS`] that is an array.
    lists: Vec<(&'static str, Vec<Range<usize>>)>,
}

/// A top-level field as the parsers see it.
#[derive(Debug)]
pub enum Field<'a> {
    Missing,
    /// Any value that is not one of the lazily read arrays (`null` included).
    Value(&'a Value),
    /// An array of `messages` or `input`, read one element at a time.
    List(List<'a>),
}

/// An array kept in the body's bytes.
#[derive(Debug, Clone, Copy)]
pub struct List<'a> {
    bytes: &'a [u8],
    items: &'a [Range<usize>],
}

impl<'a> List<'a> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each element parsed on its own (valid JSON: the whole body was checked when read).
    pub fn iter(&self) -> impl Iterator<Item = Value> + 'a {
        let bytes = self.bytes;
        self.items
            .iter()
            .map(move |r| serde_json::from_slice(&bytes[r.clone()]).unwrap_or(Value::Null))
    }

    /// The JSON text of each element, as sent.
    pub fn raw(&self) -> impl Iterator<Item = &'a str> + 'a {
        let bytes = self.bytes;
        self.items
            .iter()
            .map(move |r| std::str::from_utf8(&bytes[r.clone()]).unwrap_or("null"))
    }
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("The request body is not valid JSON: {e}"), None)
}

impl ChatBody {
    /// The body as received (a cheap handle on the same bytes): what the CLI door forwards.
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Reads `bytes` (a JSON object), refusing lists longer than `max_items` with a 400.
    pub fn parse(bytes: Bytes, max_items: usize) -> Result<ChatBody, ApiError> {
        // One pass that validates everything and allocates nothing.
        let whole: &RawValue = serde_json::from_slice(&bytes).map_err(invalid)?;
        if !whole.get().starts_with('{') {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
                None,
            ));
        }
        let raw_fields: std::collections::BTreeMap<String, &RawValue> =
            serde_json::from_str(whole.get()).map_err(invalid)?;
        let base = bytes.as_ptr() as usize;
        let mut fields = serde_json::Map::new();
        let mut lists = Vec::new();
        for (name, raw) in raw_fields {
            let lazy = LISTS.iter().find(|l| **l == name).copied();
            if let Some(list) = lazy
                && raw.get().starts_with('[')
            {
                let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(invalid)?;
                if items.len() > max_items {
                    return Err(ApiError::bad_request(
                        format!(
                            "`{list}` holds {} items; this proxy takes at most {max_items} per request (MAX_MESSAGES). Send a shorter conversation.",
                            items.len()
                        ),
                        Some(list),
                    ));
                }
                let ranges = items
                    .iter()
                    .map(|item| {
                        let start = item.get().as_ptr() as usize - base;
                        start..start + item.get().len()
                    })
                    .collect();
                lists.push((list, ranges));
            } else {
                let value: Value = serde_json::from_str(raw.get()).map_err(invalid)?;
                fields.insert(name, value);
            }
        }
        Ok(ChatBody {
            bytes,
            fields,
            lists,
        })
    }

    /// A top-level field that is not a lazily read list.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// A top-level field, lists included.
    pub fn field(&self, name: &str) -> Field<'_> {
        if let Some((_, items)) = self.lists.iter().find(|(n, _)| *n == name) {
            return Field::List(List {
                bytes: &self.bytes,
                items,
            });
        }
        match self.fields.get(name) {
            Some(v) => Field::Value(v),
            None => Field::Missing,
        }
    }

    /// A body built from a value (tests, and callers that already hold one).
    pub fn of(value: &Value) -> Result<ChatBody, ApiError> {
        ChatBody::parse(Bytes::from(value.to_string()), usize::MAX)
    }
}

impl FromRequest<AppState> for ChatBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        ChatBody::parse(bytes, state.config().max_messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_read_element_by_element_and_other_fields_as_values() {
        let text = r#"{"model": "m", "messages": [{"role":"user","content":"a"},
            {"role": "assistant", "content": "b"}], "input": "text", "tools": [{"x": 1}]}"#;
        let body = ChatBody::parse(Bytes::from(text), 10).expect("parses");
        assert_eq!(body.get("model"), Some(&json!("m")));
        let Field::List(list) = body.field("messages") else {
            panic!("messages is a list")
        };
        assert_eq!(list.len(), 2);
        let items: Vec<Value> = list.iter().collect();
        assert_eq!(items[1], json!({"role": "assistant", "content": "b"}));
        assert_eq!(list.raw().next(), Some(r#"{"role":"user","content":"a"}"#));
        // Not an array: an ordinary value; other arrays too.
        assert!(matches!(
            body.field("input"),
            Field::Value(Value::String(_))
        ));
        assert!(matches!(body.field("tools"), Field::Value(Value::Array(_))));
        assert!(matches!(body.field("nothing"), Field::Missing));
        assert_eq!(body.get("messages"), None);
    }

    #[test]
    fn a_list_over_the_limit_is_a_400_naming_the_setting() {
        let body = Bytes::from(r#"{"messages":[1,2,3]}"#);
        let err = ChatBody::parse(body, 2).expect_err("too many");
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        let v = err.to_json();
        assert_eq!(v["error"]["param"], "messages");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("MAX_MESSAGES")
        );
    }

    #[test]
    fn malformed_or_non_object_bodies_are_400s() {
        for text in ["{", "[1]", "\"x\"", "{\"messages\": [1,}", "{} trailing"] {
            let err = ChatBody::parse(Bytes::from(text), 10).expect_err(text);
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{text}");
        }
    }

    #[test]
    fn escaped_and_multibyte_text_inside_elements_survives() {
        let body =
            ChatBody::of(&json!({"messages": [{"content": "h\u{e9}llo \"q\" \\ \u{1F600}"}]}))
                .expect("parses");
        let Field::List(list) = body.field("messages") else {
            panic!("list")
        };
        let first = list.iter().next().expect("one");
        assert_eq!(first["content"], "h\u{e9}llo \"q\" \\ \u{1F600}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 512, failure_persistence: None, ..Default::default()
        })]

        /// Any bytes: a body or a 400, never a panic; every list element reads back.
        #[test]
        fn any_bytes_parse_or_are_a_400(
            text in r#"[{}\[\]",:a-z0-9 ]{0,60}|\{"messages": ?\[[{}\[\]",:a-z0-9 ]{0,40}\]\}"#
        ) {
            match ChatBody::parse(Bytes::from(text.clone()), 3) {
                Ok(body) => {
                    if let Field::List(list) = body.field("messages") {
                        proptest::prop_assert!(list.len() <= 3);
                        proptest::prop_assert_eq!(list.iter().count(), list.len());
                    }
                }
                Err(e) => proptest::prop_assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST),
            }
        }
    }
}
