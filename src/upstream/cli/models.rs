//! `GET /models` (protocol notes §10): the model ids the door offers an account. Which ids it
//! returns is unknown \[G\], so the list is read liberally: OpenAI's `{"data": [{"id"}]}`, a
//! `models` list, or a bare array, of objects (`id`, else `name`) or of plain strings.

use ::http::header::{ACCEPT, USER_AGENT};
use serde_json::Value;

use super::CliConfig;
use super::account::CliAccount;
use super::chat::refused_twice;
use super::refusal::failure;
use crate::upstream::UpstreamError;
use crate::upstream::answer::truncate;
use crate::upstream::transport::{Request, Transport};

pub const CALL_MODELS: &str = "GET /models";

/// The account's model ids; a 401 gets one forced refresh and one retry.
pub async fn list(
    http: &Transport,
    cfg: &CliConfig,
    account: &CliAccount,
) -> Result<Vec<String>, UpstreamError> {
    let tokens = account.tokens();
    let mut token = tokens.access(http, cfg).await?;
    let mut renewed = false;
    loop {
        let req = Request::get(format!("{}/models", cfg.base_url))
            .as_program()
            .bearer(&token)
            .header(USER_AGENT, &cfg.user_agent)
            .header(ACCEPT, "application/json")
            .timeout(cfg.request_timeout);
        let reply = http.send(CALL_MODELS, req).await?;
        if reply.is_success() {
            return model_ids(&reply.body);
        }
        let refresh = tokens.refresh_token();
        let secrets = [token.as_str(), refresh.expose()];
        if reply.status != 401 {
            return Err(failure(CALL_MODELS, &reply, None, &secrets));
        }
        if renewed {
            return Err(refused_twice(&reply, &secrets));
        }
        token = tokens.renew_refused(http, cfg, &token).await?;
        renewed = true;
    }
}

/// The ids of a model list, in the order given, without duplicates.
pub fn model_ids(body: &str) -> Result<Vec<String>, UpstreamError> {
    let protocol = |detail: String| UpstreamError::Protocol {
        call: CALL_MODELS,
        detail,
    };
    let v: Value = serde_json::from_str(body)
        .map_err(|_| protocol(format!("the answer is not JSON: {}", truncate(body))))?;
    let list = ["data", "models"]
        .iter()
        .find_map(|k| v.get(*k)?.as_array())
        .or_else(|| v.as_array())
        .ok_or_else(|| {
            protocol(format!(
                "the answer holds no model list: {}",
                truncate(body)
            ))
        })?;
    let mut ids: Vec<String> = Vec::new();
    for entry in list {
        let id = match entry {
            Value::String(s) => Some(s.as_str()),
            other => ["id", "name"].iter().find_map(|k| other.get(*k)?.as_str()),
        };
        if let Some(id) = id.map(str::trim).filter(|s| !s.is_empty())
            && !ids.iter().any(|known| known == id)
        {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_in_every_shape() {
        let openai =
            r#"{"object":"list","data":[{"id":"gpt-5.4","object":"model"},{"id":"kimi-k2.5"}]}"#;
        assert_eq!(model_ids(openai).expect("ids"), ["gpt-5.4", "kimi-k2.5"]);
        assert_eq!(
            model_ids(r#"["a", {"name": "b"}, {"id": "a"}, {"x": 1}, ""]"#).expect("ids"),
            ["a", "b"]
        );
        assert_eq!(
            model_ids(r#"{"models": [{"id": "c"}]}"#).expect("ids"),
            ["c"]
        );
        assert_eq!(
            model_ids(r#"{"data": []}"#).expect("ids"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn no_list_is_a_protocol_error() {
        for body in ["<html>", r#"{"object":"list"}"#] {
            assert_eq!(model_ids(body).expect_err(body).kind(), "protocol");
        }
    }
}
