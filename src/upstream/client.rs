//! [`EngineClient`]: runs one turn end to end. It makes sure the account has a session and a
//! JWT, settles which protocol generation to speak, makes the setup and trigger calls in the
//! order that generation needs, opens the WebSocket and hands back a [`Turn`].
//!
//! Any EngineLabs call refused with 401/403 gets one fresh token and one retry; a second
//! refusal means the account's session is no good.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::engine::{self, Adapter, Engine, EngineCall};
use super::frame::TurnTracker;
use super::stream::{self, WsAuth};
use super::tap::FrameTap;
use super::transport::Transport;
use super::{
    Account, Generation, HistoryRef, Identity, ProtocolChoice, Turn, TurnRequest, UpstreamConfig,
    UpstreamError, clerk,
};

/// How long the adapter list is trusted before it is fetched again.
const ADAPTER_TTL: Duration = Duration::from_secs(600);

const GEN_UNKNOWN: u8 = 0;
const GEN_1: u8 = 1;
const GEN_2: u8 = 2;

/// The cto.new client shared by all requests (one HTTP connection pool).
pub struct EngineClient {
    cfg: Arc<UpstreamConfig>,
    http: Transport,
    /// The generation `auto` settled on (`GEN_*`).
    generation: AtomicU8,
    /// `GET /chat/adapters`, with when it was fetched.
    adapters: Mutex<Option<(Instant, Arc<Vec<Adapter>>)>>,
    /// Gets a copy of every frame of every turn (`doctor` only).
    tap: Option<FrameTap>,
}

impl EngineClient {
    pub fn new(cfg: UpstreamConfig) -> Result<Self, UpstreamError> {
        let http = Transport::new(&cfg)?;
        let generation = match cfg.protocol {
            ProtocolChoice::Auto => GEN_UNKNOWN,
            ProtocolChoice::Gen1 => GEN_1,
            ProtocolChoice::Gen2 => GEN_2,
        };
        Ok(EngineClient {
            cfg: Arc::new(cfg),
            http,
            generation: AtomicU8::new(generation),
            adapters: Mutex::new(None),
            tap: None,
        })
    }

    /// Records every call this client makes (see [`crate::capture`]).
    pub fn with_recorder(mut self, recorder: crate::capture::Recorder) -> Self {
        self.http.set_recorder(recorder);
        self
    }

    /// Copies every WebSocket frame of this client's turns to `tap` (see [`FrameTap`]).
    pub fn with_frame_tap(mut self, tap: FrameTap) -> Self {
        self.tap = Some(tap);
        self
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }

    /// The generation `auto` settled on, if it has settled (always set for a fixed choice).
    pub fn generation(&self) -> Option<Generation> {
        match self.generation.load(Ordering::Relaxed) {
            GEN_1 => Some(Generation::Gen1),
            GEN_2 => Some(Generation::Gen2),
            _ => None,
        }
    }

    /// Settles `auto` on a generation (first answer wins), logging the choice once.
    fn settle(&self, generation: Generation) {
        let value = match generation {
            Generation::Gen1 => GEN_1,
            Generation::Gen2 => GEN_2,
        };
        if self
            .generation
            .compare_exchange(GEN_UNKNOWN, value, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(
                generation = generation.as_str(),
                "cto.new protocol generation settled"
            );
        }
    }

    /// Discovers the account's session (if not yet known) and mints/reuses a JWT.
    pub async fn ensure_ready(&self, account: &Account) -> Result<Identity, UpstreamError> {
        clerk::jwt(&self.http, &self.cfg, account).await?;
        match account.identity() {
            Some(identity) => Ok(identity),
            None => clerk::discover(&self.http, &self.cfg, account).await,
        }
    }

    /// Starts one turn: resolves the model, makes the trigger calls, opens the WebSocket in the
    /// order the generation needs, and returns a [`Turn`] that yields the answer.
    pub async fn start_turn(
        &self,
        account: &Arc<Account>,
        req: TurnRequest,
    ) -> Result<Turn, UpstreamError> {
        let identity = self.ensure_ready(account).await?;
        if let Some(history) = req.continue_history.clone() {
            return match history.generation {
                Generation::Gen1 => self.run_gen1(account, &identity, &req, Some(history)).await,
                Generation::Gen2 => self.run_gen2(account, &identity, &req, Some(history)).await,
            };
        }
        let generation = self.generation().unwrap_or(Generation::Gen2);
        match generation {
            Generation::Gen1 => self.run_gen1(account, &identity, &req, None).await,
            Generation::Gen2 => match self.run_gen2(account, &identity, &req, None).await {
                Err(e) if self.generation().is_none() && gen2_missing(&e) => {
                    tracing::debug!(error = %e, "Gen-2 setup call missing; falling back to Gen-1");
                    self.settle(Generation::Gen1);
                    self.run_gen1(account, &identity, &req, None).await
                }
                other => other,
            },
        }
    }

    /// Gen-2: model via the team's preferred model, hosted project, socket first, then trigger.
    async fn run_gen2(
        &self,
        account: &Account,
        identity: &Identity,
        req: &TurnRequest,
        continued: Option<HistoryRef>,
    ) -> Result<Turn, UpstreamError> {
        let adapters = self.adapters(account).await?;
        let adapter = adapters
            .iter()
            .find(|a| a.answers_to(&req.model))
            .ok_or_else(|| UpstreamError::UnknownModel(req.model.clone()))?;
        let key = adapter.key.clone();
        let image_urls = if req.images.is_empty() {
            Vec::new()
        } else if adapter.supports_images != Some(true) {
            return Err(UpstreamError::ImagesRefused(format!(
                "model `{key}` does not accept images; pick a model whose adapter supports images"
            )));
        } else {
            self.upload_images(account, &req.images).await?
        };

        let (chat_history_id, workspace_id) = match continued {
            Some(h) => (h.chat_history_id, h.workspace_id),
            None => {
                let project = self
                    .authed(account, |e| async move { e.engine().create_hosted().await })
                    .await?;
                (project.project_id, Some(project.workspace_id))
            }
        };

        let url = stream::ws_url(
            &self.cfg,
            &chat_history_id,
            WsAuth::Gen2 {
                user_id: &identity.user_id,
                org_id: identity.org_id.as_deref(),
                workspace_id: workspace_id.as_deref(),
            },
        );
        let mut reader = stream::open(
            &self.http,
            &self.cfg,
            &url,
            TurnTracker::new(&req.prompt, false).tapped(self.tap.clone()),
        )
        .await?;

        let id = chat_history_id.as_str();
        if let Err(e) = self
            .authed(account, |e| async move { e.engine().offers(id).await })
            .await
        {
            tracing::debug!(error = %e, "offers call failed; triggering anyway");
        }
        let current_model = self.hold_model(account, &key).await?;
        reader.arm();
        let prompt = req.prompt.as_str();
        let image_urls = image_urls.as_slice();
        // On failure `reader` is dropped here, which closes the socket.
        self.authed(account, |e| async move {
            e.engine().chat_gen2(id, prompt, image_urls).await
        })
        .await?;
        drop(current_model);

        Ok(Turn::web(
            HistoryRef {
                generation: Generation::Gen2,
                chat_history_id,
                workspace_id,
            },
            reader,
        ))
    }

    /// A read guard on the account's preferred model, switched to `key` first if needed.
    /// The project, socket and offers calls above do not depend on the model, so only the
    /// switch and the trigger are ordered; triggers for the model already in place run at once.
    async fn hold_model<'a>(
        &self,
        account: &'a Account,
        key: &str,
    ) -> Result<tokio::sync::RwLockReadGuard<'a, Option<String>>, UpstreamError> {
        let current = account.model_lock.read().await;
        if current.as_deref() == Some(key) {
            return Ok(current);
        }
        drop(current);
        let mut current = account.model_lock.write().await;
        if current.as_deref() != Some(key) {
            *current = None;
            self.authed(account, |e| {
                let key = key.to_string();
                async move { e.engine().set_preferred_model(&key).await }
            })
            .await?;
            *current = Some(key.to_string());
        }
        Ok(tokio::sync::RwLockWriteGuard::downgrade(current))
    }

    /// Presigns, then PUTs each image; returns the final URLs for the trigger.
    async fn upload_images(
        &self,
        account: &Account,
        images: &[super::images::ImageData],
    ) -> Result<Vec<String>, UpstreamError> {
        let slots = self
            .authed(account, |e| async move { e.engine().presign(images).await })
            .await?;
        for (slot, image) in slots.iter().zip(images) {
            super::images::put(&self.http, &self.cfg, slot, image).await?;
        }
        Ok(slots.into_iter().map(|s| s.final_url).collect())
    }

    /// The shared transport (fetching image URLs reuses its pool and timeouts).
    pub fn http(&self) -> &Transport {
        &self.http
    }

    /// Gen-1: trigger with the model as `adapterName`, then connect (the server replays).
    async fn run_gen1(
        &self,
        account: &Account,
        identity: &Identity,
        req: &TurnRequest,
        continued: Option<HistoryRef>,
    ) -> Result<Turn, UpstreamError> {
        if !req.images.is_empty() {
            return Err(UpstreamError::ImagesRefused(
                "images need cto.new's Gen-2 protocol; this account speaks Gen-1".into(),
            ));
        }
        let chat_history_id = continued
            .map(|h| h.chat_history_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (id, prompt, model) = (
            chat_history_id.as_str(),
            req.prompt.as_str(),
            req.model.as_str(),
        );
        self.authed(account, |e| async move {
            e.engine().chat_gen1(id, prompt, model).await
        })
        .await?;
        let url = stream::ws_url(
            &self.cfg,
            &chat_history_id,
            WsAuth::Gen1 {
                user_id: &identity.user_id,
            },
        );
        let reader = stream::open(
            &self.http,
            &self.cfg,
            &url,
            TurnTracker::new(&req.prompt, true).tapped(self.tap.clone()),
        )
        .await?;
        Ok(Turn::web(
            HistoryRef {
                generation: Generation::Gen1,
                chat_history_id,
                workspace_id: None,
            },
            reader,
        ))
    }

    /// Fetches the adapter list now, whatever the cache holds, and caches it.
    pub async fn refresh_adapters(
        &self,
        account: &Account,
    ) -> Result<Arc<Vec<Adapter>>, UpstreamError> {
        self.fetch_adapters(account).await
    }

    /// The adapter list (`GET /chat/adapters`), cached for `ADAPTER_TTL`. A successful fetch
    /// settles `auto` on Gen-2.
    async fn adapters(&self, account: &Account) -> Result<Arc<Vec<Adapter>>, UpstreamError> {
        if let Some((at, list)) = self.cached_adapters()
            && at.elapsed() < ADAPTER_TTL
        {
            return Ok(list);
        }
        self.fetch_adapters(account).await
    }

    async fn fetch_adapters(&self, account: &Account) -> Result<Arc<Vec<Adapter>>, UpstreamError> {
        let list = Arc::new(
            self.authed(account, |e| async move { e.engine().adapters().await })
                .await?,
        );
        self.settle(Generation::Gen2);
        if let Ok(mut cache) = self.adapters.lock() {
            *cache = Some((Instant::now(), Arc::clone(&list)));
        }
        Ok(list)
    }

    fn cached_adapters(&self) -> Option<(Instant, Arc<Vec<Adapter>>)> {
        self.adapters.lock().ok()?.clone()
    }

    /// Deletes an upstream chat history (cleanup of finished conversations).
    pub async fn delete_history(
        &self,
        account: &Account,
        history: &HistoryRef,
    ) -> Result<(), UpstreamError> {
        let id = history.chat_history_id.as_str();
        self.authed(
            account,
            |e| async move { e.engine().delete_history(id).await },
        )
        .await
    }

    /// The account's `/billing` answer, as the upstream sent it.
    pub async fn billing(&self, account: &Account) -> Result<serde_json::Value, UpstreamError> {
        self.authed(account, |e| async move { e.engine().billing().await })
            .await
    }

    /// Runs an EngineLabs call with the account's JWT; after a 401/403, mints once more and
    /// retries once. A second refusal is reported as a rejected session.
    async fn authed<'s, T, F, Fut>(&'s self, account: &Account, call: F) -> Result<T, UpstreamError>
    where
        F: Fn(Authed<'s>) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let jwt = clerk::jwt(&self.http, &self.cfg, account).await?;
        match call(self.with_jwt(jwt)).await {
            Err(e) if engine::is_token_refusal(&e).is_some() => {
                tracing::debug!(account = %account.label(), error = %e, "EngineLabs refused the token; minting a fresh one");
                account.invalidate_jwt();
                let jwt = clerk::jwt(&self.http, &self.cfg, account).await?;
                call(self.with_jwt(jwt)).await.map_err(|e| match e {
                    UpstreamError::Status {
                        call,
                        status: status @ (401 | 403),
                        ..
                    } => UpstreamError::CookieRejected {
                        detail: format!(
                            "EngineLabs refused a freshly minted session token on `{call}` (HTTP {status})"
                        ),
                    },
                    other => other,
                })
            }
            other => other,
        }
    }

    fn with_jwt(&self, jwt: String) -> Authed<'_> {
        Authed {
            http: &self.http,
            cfg: &self.cfg,
            jwt,
        }
    }
}

/// A JWT bound to the client, handed to one attempt of an EngineLabs call.
struct Authed<'a> {
    http: &'a Transport,
    cfg: &'a UpstreamConfig,
    jwt: String,
}

impl Authed<'_> {
    fn engine(&self) -> Engine<'_> {
        Engine {
            http: self.http,
            cfg: self.cfg,
            jwt: &self.jwt,
        }
    }
}

/// Whether Gen-2's first setup call says the Gen-2 API does not exist here.
fn gen2_missing(err: &UpstreamError) -> bool {
    matches!(
        err,
        UpstreamError::Status { call, status: 404 | 405, .. } if *call == EngineCall::Adapters.label()
    )
}
