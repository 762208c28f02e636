//! Unit tests of the Messages body parser: what it accepts, and the 400s naming the field.

use super::*;
use serde_json::json;

fn parse(v: &Value, require_max_tokens: bool) -> Result<MessagesRequest, ApiError> {
    MessagesRequest::parse(&ChatBody::of(v)?, require_max_tokens)
}

fn texts(r: &MessagesRequest) -> Vec<(Role, &str)> {
    r.chat
        .messages
        .iter()
        .map(|m| (m.role, m.text.as_str()))
        .collect()
}

#[test]
fn system_goes_first_and_blocks_are_joined() {
    let r = parse(
        &json!({"model":"m","max_tokens":10,"stream":true,"temperature":0.2,"metadata":{"user_id":"u"},
            "system":[{"type":"text","text":"be brief"},{"type":"text","text":"be kind","cache_control":{"type":"ephemeral"}}],
            "messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                        {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":""},{"type":"text","text":"c"}]},
                        {"role":"user","content":"d"}]}),
        true,
    )
    .expect("valid");
    assert!(r.stream);
    assert_eq!(r.max_tokens, Some(10));
    assert_eq!(
        texts(&r),
        [
            (Role::System, "be brief\nbe kind"),
            (Role::User, "a\nb"),
            (Role::Assistant, "c"),
            (Role::User, "d")
        ]
    );
}

#[test]
fn tool_blocks_become_calls_and_results() {
    let r = parse(
        &json!({"max_tokens":5,"messages":[
            {"role":"user","content":"weather?"},
            {"role":"assistant","content":[{"type":"text","text":"checking"},{"type":"tool_use","id":"t1","name":"get_weather","input":{"city":"Paris"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"sunny"}]},{"type":"text","text":"so?"}]}],
            "tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}),
        true,
    )
    .expect("valid");
    assert_eq!(
        texts(&r),
        [
            (Role::User, "weather?"),
            (Role::Assistant, "checking"),
            (Role::Tool, "sunny"),
            (Role::User, "so?")
        ]
    );
    let m = &r.chat.messages;
    assert_eq!(m[1].tool_calls[0].arguments, "{\"city\":\"Paris\"}");
    let res = m[2].result_of.as_ref().expect("result");
    assert!(res.is_error && res.call_id == "t1");
    let tools = r.chat.tools.as_ref().expect("offered");
    assert_eq!(*tools.choice(), crate::tools::ToolChoice::Required);
}

#[test]
fn system_messages_inside_messages_fold_into_the_system_prompt() {
    let r = parse(
        &json!({"max_tokens":5,"system":"first","messages":[
            {"role":"user","content":"hi"},
            {"role":"system","content":[{"type":"text","text":"second"}]},
            {"role":"user","content":[{"type":"text","text":"more"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}),
        true,
    )
    .expect("valid");
    assert_eq!(
        texts(&r),
        [
            (Role::System, "first\n\nsecond"),
            (Role::User, "hi"),
            (Role::User, "more")
        ]
    );
    assert_eq!(r.chat.images.len(), 1);
}

#[test]
fn max_tokens_is_required_and_positive_for_messages_only() {
    let msgs = json!([{"role":"user","content":"x"}]);
    for mt in [json!(null), json!(0), json!(-3), json!(1.5), json!("10")] {
        let e = parse(&json!({"max_tokens": mt, "messages": msgs}), true).expect_err("rejected");
        assert_eq!(e.to_json()["error"]["param"], "max_tokens", "{mt}");
    }
    assert!(parse(&json!({"messages": msgs}), false).is_ok());
    assert!(parse(&json!({"messages": msgs}), true).is_err());
}

#[test]
fn rejects_bad_shapes_and_images() {
    for body in [
        json!({"max_tokens":1}),
        json!({"max_tokens":1,"messages":[]}),
        json!({"max_tokens":1,"messages":[{"role":"system","content":"x"}]}),
        json!({"max_tokens":1,"messages":[{"role":"wizard","content":"x"}]}),
        json!({"max_tokens":1,"messages":[{"role":"user","content":5}]}),
        json!({"max_tokens":1,"messages":[{"role":"user"}]}),
        json!({"max_tokens":1,"system":5,"messages":[{"role":"user","content":"x"}]}),
        json!({"max_tokens":1,"system":"only","messages":[{"role":"user","content":""}]}),
        json!({"max_tokens":1,"model":5,"messages":[{"role":"user","content":"x"}]}),
        json!({"max_tokens":1,"stream":"yes","messages":[{"role":"user","content":"x"}]}),
        json!({"max_tokens":1,"messages":[{"role":"user","content":[{"type":"video"}]}]}),
    ] {
        let e = parse(&body, true).expect_err("must be rejected");
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{body}");
    }
    let img = json!({"max_tokens":1,"messages":[{"role":"user","content":[
        {"type":"text","text":"what is it?"},
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]});
    let r = parse(&img, true).expect("image taken");
    assert_eq!(
        r.chat.images,
        [ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "AA==".into()
        }]
    );
    let bad_source = json!({"max_tokens":1,"messages":[{"role":"user","content":[
        {"type":"text","text":"x"},{"type":"image","source":{"type":"file"}}]}]});
    assert!(parse(&bad_source, true).is_err());
}
