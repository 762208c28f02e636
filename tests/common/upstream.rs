//! The web door client's test kit (`upstream::EngineClient` against the simulator): the client,
//! the account, a turn request, and a turn read to its end.

use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::simulator::{SimConfig, Simulator};
use enginelabs_2api::upstream::{
    Account, EngineClient, ProtocolChoice, Turn, TurnEvent, TurnRequest, UpstreamConfig,
    UpstreamError,
};

/// Words in each reply of [`sim`].
pub const WORDS: usize = 12;

/// A simulator with [`WORDS`] words per reply.
pub async fn sim(cfg: SimConfig) -> Simulator {
    Simulator::start(SimConfig {
        reply_words: WORDS,
        ..cfg
    })
    .await
    .expect("simulator starts")
}

/// A web door client of `sim` speaking `protocol`, with 10 s timeouts.
pub fn client(sim: &Simulator, protocol: ProtocolChoice) -> EngineClient {
    let mut cfg = UpstreamConfig::with_urls(&sim.url(), &sim.url());
    cfg.protocol = protocol;
    cfg.request_timeout = Duration::from_secs(10);
    cfg.idle_timeout = Duration::from_secs(10);
    EngineClient::new(cfg).expect("client")
}

/// The simulator's first account, as the pool would hold it.
pub fn account(sim: &Simulator) -> Arc<Account> {
    Arc::new(Account::new("test", &sim.account().cookie).expect("account"))
}

/// A fresh turn (no history to continue, no images).
pub fn request(model: &str, prompt: &str) -> TurnRequest {
    TurnRequest {
        model: model.to_string(),
        prompt: prompt.to_string(),
        continue_history: None,
        images: Vec::new(),
    }
}

/// Everything a turn yielded: reasoning, content, and how it ended.
pub struct Outcome {
    pub reasoning: String,
    pub content: String,
    pub end: Result<bool, UpstreamError>,
}

/// Reads a turn to its end; fails the test after 30 s of silence.
pub async fn collect(mut turn: Turn) -> Outcome {
    let (mut reasoning, mut content) = (String::new(), String::new());
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(30), turn.next()).await {
            Err(_) => panic!("turn produced nothing for 30 s"),
            Ok(None) => panic!("turn ended without Finished or an error"),
            Ok(Some(Ok(TurnEvent::Reasoning(r)))) => reasoning.push_str(&r),
            Ok(Some(Ok(TurnEvent::Content(c)))) => content.push_str(&c),
            Ok(Some(Ok(TurnEvent::Finished { cancelled }))) => break Ok(cancelled),
            Ok(Some(Err(e))) => break Err(e),
            Ok(Some(Ok(other))) => panic!("the web door emits no {other:?}"),
        }
    };
    Outcome {
        reasoning,
        content,
        end,
    }
}
