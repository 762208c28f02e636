//! The tool definitions as JSON lines, shrunk step by step to fit a byte budget.
//!
//! cto.new refuses prompts over ~20 000 bytes, and Claude Code alone offers ~20 tools in ~48 KB
//! of definitions, most of it prose: a few tools (Bash, TodoWrite, Task) carry pages of usage
//! advice. What matters most to get a call right is, in order: every tool's name and schema, the
//! first lines of each description, the parameter descriptions, the rest of the prose. So the
//! steps, each tried only when the previous one does not fit, are:
//! 1. the definitions as given;
//! 2. without schema metadata (`$schema`, `title`, `examples`, `$comment`);
//! 3. tool descriptions cut to a common cap, the largest that fits, so short descriptions stay
//!    whole and only the long ones lose their tails (down to 400 bytes);
//! 4. parameter descriptions cut to 200 bytes, then 80, with tool descriptions down to 200 and
//!    100 bytes;
//! 5. no parameter descriptions, tool descriptions down to nothing.
//!
//! No tool is ever dropped, and no schema keyword that constrains a value is touched: a
//! property *named* `description` (Bash and Task have one) is a property, not prose. When even
//! the last step does not fit, its result is the best effort.

use std::borrow::Cow;

use serde_json::Value;

use super::ToolSpec;

/// How much of the schemas is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schemas {
    AsGiven,
    NoMeta,
    /// No metadata, parameter descriptions cut to this many bytes (0: removed).
    Descriptions(usize),
}

/// The steps after the first two: schema level and the smallest tool-description cap tried.
const STEPS: [(Schemas, usize); 4] = [
    (Schemas::NoMeta, 400),
    (Schemas::Descriptions(200), 200),
    (Schemas::Descriptions(80), 100),
    (Schemas::Descriptions(0), 0),
];

/// Schema keywords that only inform a human reader.
const META: [&str; 4] = ["$schema", "title", "examples", "$comment"];

/// One JSON line per tool (no newlines), their total with one `\n` each at most `room` bytes
/// when that can be reached.
pub(crate) fn tool_lines(specs: &[ToolSpec], room: usize) -> Vec<String> {
    let full = Lines::new(specs, Schemas::AsGiven);
    if full.size(None) <= room {
        return full.render(None);
    }
    let longest = specs.iter().map(|s| s.description.len()).max().unwrap_or(0);
    let mut last = None;
    for (level, floor) in [(Schemas::NoMeta, longest)].into_iter().chain(STEPS) {
        let lines = Lines::new(specs, level);
        if let Some(cap) = largest_fitting_cap(&lines, floor, longest, room) {
            return lines.render(Some(cap));
        }
        last = Some(lines);
    }
    match last {
        Some(smallest) => smallest.render(Some(0)),
        None => full.render(None),
    }
}

/// The largest cap in `floor..=longest` whose lines fit `room` (a binary search: shorter caps
/// never give longer lines).
fn largest_fitting_cap(lines: &Lines, floor: usize, longest: usize, room: usize) -> Option<usize> {
    if lines.size(Some(floor)) > room {
        return None;
    }
    let (mut fits, mut too_big) = (floor, longest + 1);
    while too_big - fits > 1 {
        let mid = fits + (too_big - fits) / 2;
        if lines.size(Some(mid)) <= room {
            fits = mid;
        } else {
            too_big = mid;
        }
    }
    Some(fits)
}

/// The tools at one schema level, ready to render with any description cap.
struct Lines<'a> {
    /// Per tool: its name and description as given, and its schema as compact JSON.
    tools: Vec<(&'a str, &'a str, String)>,
}

impl<'a> Lines<'a> {
    fn new(specs: &'a [ToolSpec], level: Schemas) -> Self {
        let tools = specs
            .iter()
            .map(|s| {
                let schema = match &s.parameters {
                    Value::Null => r#"{"type":"object","properties":{}}"#.to_string(),
                    given if level == Schemas::AsGiven => given.to_string(),
                    given => {
                        let mut schema = given.clone();
                        strip(&mut schema, level);
                        schema.to_string()
                    }
                };
                (s.name.as_str(), s.description.as_str(), schema)
            })
            .collect();
        Lines { tools }
    }

    fn line(name: &str, description: &str, schema: &str) -> String {
        format!(
            r#"{{"name":{},"description":{},"parameters":{schema}}}"#,
            Value::from(name),
            Value::from(description),
        )
    }

    fn render(&self, cap: Option<usize>) -> Vec<String> {
        self.tools
            .iter()
            .map(|(name, description, schema)| Self::line(name, &capped(description, cap), schema))
            .collect()
    }

    /// The rendered size (lines and their newlines), counted without rendering: the search
    /// asks for it a few dozen times over ~50 KB of prose.
    fn size(&self, cap: Option<usize>) -> usize {
        const KEYS: usize = r#"{"name":,"description":,"parameters":}"#.len() + 1;
        self.tools
            .iter()
            .map(|(name, description, schema)| {
                let description = match cap.and_then(|cap| cut_at(description, cap)) {
                    Some(0) => json_len(""),
                    Some(end) => json_len(description[..end].trim_end()) + ELLIPSIS.len(),
                    None => json_len(description),
                };
                KEYS + json_len(name) + description + schema.len()
            })
            .sum()
    }
}

fn capped(text: &str, cap: Option<usize>) -> Cow<'_, str> {
    match cap {
        Some(cap) => shorten(text, cap),
        None => Cow::Borrowed(text),
    }
}

/// Marks a cut description.
const ELLIPSIS: &str = "…";

/// `text` cut to about `cap` bytes, at a word boundary when one is near, with `…` when cut.
pub(crate) fn shorten(text: &str, cap: usize) -> Cow<'_, str> {
    match cut_at(text, cap) {
        None => Cow::Borrowed(text),
        Some(0) => Cow::Borrowed(""),
        Some(end) => Cow::Owned(format!("{}{ELLIPSIS}", text[..end].trim_end())),
    }
}

/// Where [`shorten`] cuts `text`: `None` when it fits. A cap of 0 leaves nothing, not even `…`.
fn cut_at(text: &str, cap: usize) -> Option<usize> {
    if text.len() <= cap {
        return None;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(space) = text[..end].rfind(char::is_whitespace)
        && space >= end * 4 / 5
    {
        end = space;
    }
    Some(end)
}

/// The length of `s` as a JSON string, quotes included, escaped as `serde_json` escapes.
fn json_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// Removes what `level` drops, at schema positions only.
fn strip(schema: &mut Value, level: Schemas) {
    let Value::Object(map) = schema else {
        return;
    };
    if level != Schemas::AsGiven {
        for key in META {
            map.remove(key);
        }
    }
    if let Schemas::Descriptions(cap) = level {
        if cap == 0 {
            map.remove("description");
        } else if let Some(Value::String(d)) = map.get_mut("description")
            && let Cow::Owned(short) = shorten(d, cap)
        {
            *d = short;
        }
    }
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(named) = value {
                    named.values_mut().for_each(|s| strip(s, level));
                }
            }
            "items" | "prefixItems" | "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(list) => list.iter_mut().for_each(|s| strip(s, level)),
                single => strip(single, level),
            },
            "additionalProperties"
            | "additionalItems"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedProperties"
            | "unevaluatedItems" => strip(value, level),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }

    fn total(lines: &[String]) -> usize {
        lines.iter().map(|l| l.len() + 1).sum()
    }

    #[test]
    fn definitions_that_fit_are_sent_as_given() {
        let specs = [spec(
            "Read",
            "Reads a file.",
            json!({"title": "R", "type": "object"}),
        )];
        assert_eq!(
            tool_lines(&specs, 10_000),
            vec![
                r#"{"name":"Read","description":"Reads a file.","parameters":{"title":"R","type":"object"}}"#
            ]
        );
    }

    #[test]
    fn a_missing_schema_is_an_empty_object_schema() {
        let lines = tool_lines(&[spec("Now", "", Value::Null)], 10_000);
        assert!(lines[0].ends_with(r#""parameters":{"type":"object","properties":{}}}"#));
    }

    #[test]
    fn only_long_descriptions_lose_their_tails() {
        let long = "word ".repeat(400);
        let specs = [
            spec("Bash", &long, json!({})),
            spec("Read", "Reads a file.", json!({})),
        ];
        let lines = tool_lines(&specs, 1_200);
        assert!(total(&lines) <= 1_200, "{}", total(&lines));
        assert!(lines[0].contains("word…"), "{}", lines[0]);
        assert!(
            lines[0].len() > 900,
            "the cap is as large as the room allows"
        );
        assert!(lines[1].contains(r#""Reads a file.""#));
    }

    #[test]
    fn a_property_named_description_is_kept() {
        let mut schema = json!({
            "type": "object",
            "description": "prose",
            "properties": {"description": {"type": "string", "description": "more prose"}},
            "required": ["description"]
        });
        strip(&mut schema, Schemas::Descriptions(0));
        assert_eq!(
            schema,
            json!({"type": "object", "properties": {"description": {"type": "string"}}, "required": ["description"]})
        );
    }

    #[test]
    fn metadata_goes_but_constraints_stay() {
        let mut schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "T",
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1, "examples": [3], "default": 2}},
            "anyOf": [{"title": "x", "required": ["n"]}],
            "additionalProperties": false
        });
        strip(&mut schema, Schemas::NoMeta);
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "default": 2}},
                "anyOf": [{"required": ["n"]}],
                "additionalProperties": false
            })
        );
    }

    #[test]
    fn when_nothing_fits_every_tool_is_still_there() {
        let specs: Vec<ToolSpec> = (0..5)
            .map(|i| {
                spec(
                    &format!("T{i}"),
                    "some words here",
                    json!({"description": "d"}),
                )
            })
            .collect();
        let lines = tool_lines(&specs, 10);
        assert_eq!(lines.len(), 5);
        assert!(
            lines
                .iter()
                .all(|l| l.contains(r#""description":"""#) && !l.contains(r#""d""#))
        );
    }

    #[test]
    fn the_counted_size_is_the_rendered_size() {
        let specs = crate::tools::fixture::claude_code();
        for level in [
            Schemas::AsGiven,
            Schemas::NoMeta,
            Schemas::Descriptions(80),
            Schemas::Descriptions(0),
        ] {
            let lines = Lines::new(&specs, level);
            for cap in [None, Some(0), Some(1), Some(57), Some(400), Some(5_000)] {
                assert_eq!(
                    lines.size(cap),
                    total(&lines.render(cap)),
                    "{level:?} {cap:?}"
                );
            }
        }
        let odd = [spec(
            "Q\"",
            "tab\there \u{1} \"quoted\" é \\ end",
            json!({}),
        )];
        let lines = Lines::new(&odd, Schemas::AsGiven);
        assert_eq!(lines.size(None), total(&lines.render(None)));
    }

    #[test]
    fn shorten_cuts_at_a_word_and_a_char_boundary() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("one two three four", 15), "one two three…");
        assert_eq!(shorten("one two three four", 12), "one two thre…");
        assert_eq!(shorten("ééééé", 3), "é…");
        assert_eq!(shorten("abc", 0), "");
    }
}
