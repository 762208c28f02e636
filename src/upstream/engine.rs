//! The EngineLabs REST client (protocol notes §4): the Gen-2 setup (`/chat/adapters`,
//! `/teams/preferred-model`, `/projects/create-hosted`, `/engine-agent/offers`), the trigger
//! itself for both generations, the image presign, and the side calls (`DELETE` a history,
//! `/billing`). Each call is an [`EngineCall`], whose one definition gives its method, path and
//! the name it has in errors and logs.
//!
//! Each function makes exactly one call with the JWT it is given; re-minting and retrying after
//! a 401/403 is the client's job. Such refusals come back as `Status{status: 401|403}`.

use ::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::answer;
use super::transport::{Reply, Request, Transport};
use super::{UpstreamConfig, UpstreamError};

/// One entry of `GET /chat/adapters`. Fields beyond `key` are optional: liberal in what we take.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Adapter {
    /// Snake-case key for `PATCH /teams/preferred-model` (`gpt_5_4`).
    pub key: String,
    /// Upstream model name (`gpt-5.4`).
    pub model: Option<String>,
    /// PascalCase engine key (`GPT5_4`), the Gen-1 `adapterName` style.
    pub engine_agent_key: Option<String>,
    pub provider: Option<String>,
    pub minimum_tier: Option<i64>,
    pub enabled: Option<bool>,
    pub usage_multiplier: Option<f64>,
    pub supports_images: Option<bool>,
}

impl Adapter {
    /// Whether the client's model name means this adapter (any of its three names, any case).
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.trim();
        [
            Some(self.key.as_str()),
            self.engine_agent_key.as_deref(),
            self.model.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(name))
    }
}

/// What `POST /projects/create-hosted` gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedProject {
    /// Used as the chat history id.
    pub project_id: String,
    pub workspace_id: String,
}

/// Declares [`EngineCall`] from one list of `Name: METHOD "/path"`.
macro_rules! engine_calls {
    ($($(#[$doc:meta])* $call:ident: $method:ident $path:literal,)+) => {
        /// Every EngineLabs REST call.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EngineCall {
            $($(#[$doc])* $call,)+
        }

        impl EngineCall {
            pub fn method(self) -> Method {
                match self {
                    $(EngineCall::$call => Method::$method,)+
                }
            }

            /// The path under the EngineLabs base (a history's id follows `DeleteHistory`'s).
            pub fn path(self) -> &'static str {
                match self {
                    $(EngineCall::$call => $path,)+
                }
            }

            /// `METHOD /path`: the call's name in errors and logs.
            pub fn label(self) -> &'static str {
                match self {
                    $(EngineCall::$call => concat!(stringify!($method), " ", $path),)+
                }
            }
        }
    };
}

engine_calls! {
    /// The models offered to the team; answering 404/405 means the account speaks Gen-1.
    Adapters: GET "/chat/adapters",
    PreferredModel: PATCH "/teams/preferred-model",
    CreateHosted: POST "/projects/create-hosted",
    Offers: POST "/engine-agent/offers",
    /// The trigger, both generations.
    Chat: POST "/engine-agent/chat",
    DeleteHistory: DELETE "/engine-agent/chat-histories",
    Billing: GET "/billing",
    /// Upload slots for a turn's images (see `images`).
    Presign: POST "/images/presign",
}

/// The EngineLabs endpoints, bound to one HTTP client, config and JWT.
pub struct Engine<'a> {
    pub http: &'a Transport,
    pub cfg: &'a UpstreamConfig,
    pub jwt: &'a str,
}

impl Engine<'_> {
    fn request(&self, method: Method, path: &str) -> Request {
        Request::new(method, format!("{}{}", self.cfg.engine_base_url, path))
            .bearer(self.jwt)
            .header(::http::header::ORIGIN, &self.cfg.origin)
            .header(::http::header::REFERER, format!("{}/", self.cfg.origin))
            .header(::http::header::USER_AGENT, &self.cfg.user_agent)
            .header(::http::header::ACCEPT, "application/json")
            .timeout(self.cfg.request_timeout)
    }

    /// Makes `call` (at `suffix` below its path, when given) with a JSON body, if any.
    pub(super) async fn call(
        &self,
        call: EngineCall,
        suffix: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply, UpstreamError> {
        let path = match suffix {
            Some(suffix) => format!("{}/{suffix}", call.path()),
            None => call.path().to_string(),
        };
        let mut req = self.request(call.method(), &path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply = self.http.send(call.label(), req).await?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(failure(call.label(), &reply))
        }
    }

    /// `GET /chat/adapters`: the models offered to this team.
    pub async fn adapters(&self) -> Result<Vec<Adapter>, UpstreamError> {
        let reply = self.call(EngineCall::Adapters, None, None).await?;
        let body = parse_json(EngineCall::Adapters, &reply.body)?;
        let list = body
            .get("chatAdapters")
            .or_else(|| body.get("adapters"))
            .or(Some(&body).filter(|b| b.is_array()))
            .and_then(Value::as_array)
            .ok_or_else(|| UpstreamError::Protocol {
                call: EngineCall::Adapters.label(),
                detail: "no `chatAdapters` list in the answer".to_string(),
            })?;
        Ok(list
            .iter()
            .filter_map(|a| serde_json::from_value::<Adapter>(a.clone()).ok())
            .filter(|a| !a.key.is_empty())
            .collect())
    }

    /// `PATCH /teams/preferred-model`: selects the model for the team's next turns.
    pub async fn set_preferred_model(&self, key: &str) -> Result<(), UpstreamError> {
        self.call(
            EngineCall::PreferredModel,
            None,
            Some(json!({ "modelKey": key })),
        )
        .await
        .map(drop)
    }

    /// `POST /projects/create-hosted` with a throwaway project name.
    pub async fn create_hosted(&self) -> Result<HostedProject, UpstreamError> {
        let reply = self
            .call(
                EngineCall::CreateHosted,
                None,
                Some(json!({ "projectName": project_name() })),
            )
            .await?;
        let body = parse_json(EngineCall::CreateHosted, &reply.body)?;
        let field = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| UpstreamError::Protocol {
                    call: EngineCall::CreateHosted.label(),
                    detail: format!("no `{name}` in the answer"),
                })
        };
        Ok(HostedProject {
            project_id: field("projectId")?,
            workspace_id: field("workspaceId")?,
        })
    }

    /// `POST /engine-agent/offers`, which the browser makes before each turn.
    pub async fn offers(&self, chat_history_id: &str) -> Result<(), UpstreamError> {
        self.call(
            EngineCall::Offers,
            None,
            Some(json!({ "chatHistoryId": chat_history_id, "surface": "ENGINE_AGENT" })),
        )
        .await
        .map(drop)
    }

    /// Gen-2 trigger: the prompt travels base64-encoded so non-ASCII text survives;
    /// `imageUrls` (final URLs of uploaded images) only when there are some.
    pub async fn chat_gen2(
        &self,
        chat_history_id: &str,
        prompt: &str,
        image_urls: &[String],
    ) -> Result<(), UpstreamError> {
        let mut body = json!({
            "prompt": STANDARD.encode(prompt.as_bytes()),
            "chatHistoryId": chat_history_id,
            "encoded": true,
        });
        if !image_urls.is_empty() {
            body["imageUrls"] = json!(image_urls);
        }
        self.call(EngineCall::Chat, None, Some(body))
            .await
            .map(drop)
    }

    /// Gen-1 trigger: plain prompt, client-chosen history id, model as `adapterName`.
    pub async fn chat_gen1(
        &self,
        chat_history_id: &str,
        prompt: &str,
        adapter_name: &str,
    ) -> Result<(), UpstreamError> {
        self.call(
            EngineCall::Chat,
            None,
            Some(json!({
                "prompt": prompt,
                "chatHistoryId": chat_history_id,
                "adapterName": adapter_name,
            })),
        )
        .await
        .map(drop)
    }

    /// `DELETE /engine-agent/chat-histories/{id}`.
    pub async fn delete_history(&self, chat_history_id: &str) -> Result<(), UpstreamError> {
        let id: String = url::form_urlencoded::byte_serialize(chat_history_id.as_bytes()).collect();
        self.call(EngineCall::DeleteHistory, Some(&id), None)
            .await
            .map(drop)
    }

    /// `GET /billing`: credits and limits, shape varies between generations.
    pub async fn billing(&self) -> Result<Value, UpstreamError> {
        let reply = self.call(EngineCall::Billing, None, None).await?;
        parse_json(EngineCall::Billing, &reply.body)
    }
}

/// `proxy-` and 8 random lowercase letters/digits.
fn project_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("proxy-{suffix}")
}

fn parse_json(call: EngineCall, body: &str) -> Result<Value, UpstreamError> {
    serde_json::from_str(body).map_err(|_| UpstreamError::Protocol {
        call: call.label(),
        detail: format!("the answer is not JSON: {}", answer::truncate(body)),
    })
}

/// Maps a non-success EngineLabs answer (see the module doc for 401/403).
pub(crate) fn failure(call: &'static str, reply: &Reply) -> UpstreamError {
    let body = answer::truncate(&reply.body);
    let retry_after = answer::retry_after(&reply.headers);
    match reply.status {
        413 => UpstreamError::PromptTooLarge(body),
        429 => UpstreamError::RateLimited {
            what: call.to_string(),
            retry_after,
        },
        status if status >= 400 && mentions_quota(&reply.body) => UpstreamError::QuotaExhausted {
            detail: format!("{call}: {body}"),
            retry_after,
        },
        status => UpstreamError::Status { call, status, body },
    }
}

fn mentions_quota(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    [
        "quota",
        "credit",
        "limit exceeded",
        "limit reached",
        "limitreached",
        "exceeded your",
        "usage limit",
    ]
    .iter()
    .any(|k| lower.contains(k))
}

/// Whether an error is EngineLabs refusing the JWT (worth one re-mint and retry).
pub(crate) fn is_token_refusal(err: &UpstreamError) -> Option<u16> {
    match err {
        UpstreamError::Status {
            status: status @ (401 | 403),
            ..
        } => Some(*status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "POST /engine-agent/chat";

    fn reply(status: u16, body: &str) -> Reply {
        Reply::of(status, body)
    }

    #[test]
    fn status_mapping() {
        assert!(matches!(
            failure(CHAT, &reply(413, "Message too large")),
            UpstreamError::PromptTooLarge(_)
        ));
        assert!(matches!(
            failure(CHAT, &reply(429, "")),
            UpstreamError::RateLimited { .. }
        ));
        assert!(matches!(
            failure(
                CHAT,
                &reply(402, r#"{"error":"Daily credit limit exceeded"}"#)
            ),
            UpstreamError::QuotaExhausted { .. }
        ));
        assert!(matches!(
            failure(CHAT, &reply(403, "quota exceeded")),
            UpstreamError::QuotaExhausted { .. }
        ));
        let e = failure(CHAT, &reply(401, "Unauthorized"));
        assert_eq!(is_token_refusal(&e), Some(401));
        match failure(CHAT, &reply(500, &"x".repeat(1000))) {
            UpstreamError::Status { call, status, body } => {
                assert_eq!(call, CHAT);
                assert_eq!(status, 500);
                assert_eq!(body.len(), 303);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            is_token_refusal(&failure(
                CHAT,
                &reply(500, "body must have required property modelKey")
            )),
            None
        );
    }

    #[test]
    fn calls_are_named_by_method_and_path() {
        assert_eq!(EngineCall::Chat.label(), CHAT);
        assert_eq!(EngineCall::Adapters.label(), "GET /chat/adapters");
        assert_eq!(EngineCall::DeleteHistory.method(), Method::DELETE);
        assert_eq!(
            EngineCall::DeleteHistory.label(),
            "DELETE /engine-agent/chat-histories"
        );
        assert_eq!(EngineCall::Presign.path(), "/images/presign");
    }

    #[test]
    fn adapter_names() {
        let a = Adapter {
            key: "gpt_5_4".into(),
            model: Some("gpt-5.4".into()),
            engine_agent_key: Some("GPT5_4".into()),
            ..Adapter::default()
        };
        for name in ["gpt_5_4", "GPT-5.4", "gpt5_4", " gpt_5_4 "] {
            assert!(a.answers_to(name), "{name}");
        }
        assert!(!a.answers_to("gpt-5"));
        assert!(!a.answers_to(""));
    }

    #[test]
    fn adapter_json_is_taken_liberally() {
        let a: Adapter = serde_json::from_value(json!({
            "key": "glm_5_1", "model": "glm-5.1", "engineAgentKey": "GLM5_1",
            "provider": "openrouter", "minimumTier": 0, "enabled": true,
            "usageMultiplier": 2, "supportsImages": false, "extra": [1]
        }))
        .expect("adapter");
        assert_eq!(a.engine_agent_key.as_deref(), Some("GLM5_1"));
        assert_eq!(a.usage_multiplier, Some(2.0));
    }

    #[test]
    fn project_names() {
        let n = project_name();
        assert_eq!(n.len(), 14);
        assert!(n.starts_with("proxy-"));
        assert!(
            n[6..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
