//! Test fixtures: a tool set shaped like Claude Code's (20 tools, ~49 KB of compact definitions,
//! a few with pages of usage prose), in the Anthropic `input_schema` spelling. The names and
//! schema structure follow the real tools; every description is generated filler of the same
//! length, since only sizes and structure matter to the tests.

use serde_json::Value;

use super::ToolSpec;

pub(crate) fn claude_code() -> Vec<ToolSpec> {
    let tools: Vec<Value> =
        serde_json::from_str(include_str!("testdata/claude_code_tools.json")).expect("fixture");
    tools
        .into_iter()
        .map(|t| ToolSpec {
            name: t["name"].as_str().expect("name").to_string(),
            description: t["description"].as_str().expect("description").to_string(),
            parameters: t["input_schema"].clone(),
        })
        .collect()
}
