//! The model catalogue: which models `/v1/models` offers and what a client's model name means.
//!
//! The live list comes from `GET /chat/adapters` (Gen-2, protocol notes §4.6), fetched on
//! first use (the first request waits for it, bounded) and again every `MODEL_REFRESH`. Until
//! that works (Gen-1, no account, the call failing) the configured `MODELS` are the catalogue;
//! a live list that could not be refreshed is kept rather than replaced by the configured one,
//! as it is still the better guess.
//!
//! A client may name a model by any of its three upstream names (`gpt_5_4`, `GPT5_4`,
//! `gpt-5.4`, any case) or by a `MODEL_ALIASES` alias; the canonical name (the adapter `key`)
//! is what the relay, the conversation scope and the upstream see. Disabled adapters, and
//! paid ones unless `INCLUDE_PAID_MODELS`, are neither listed nor resolved.
//!
//! Lookups are synchronous: handlers read an `Arc` snapshot behind a `RwLock` held only for
//! the clone, and the refresh task swaps in a new snapshot.
//!
//! # Layout
//! - this file: [`Catalog`] (one snapshot);
//! - `shared`: [`ModelCatalog`], the shared snapshot and its refresh through the relay's clients;
//! - `settings`: [`CatalogSettings`] and the `MODEL_ALIASES` rule;
//! - `images`: [`prepare_images`], the image checks that need the catalogue.
//!
//! The catalogue names neither the server nor the config: the server passes in its settings
//! and the [`crate::relay::Relay`] whose clients and pool it asks.

mod images;
mod settings;
mod shared;

pub use images::{ImageError, prepare_images};
pub use settings::{CatalogSettings, parse_aliases};
pub use shared::{AccountProbe, ModelCatalog};

use crate::upstream::engine::Adapter;

/// One model on offer.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogModel {
    /// The canonical name: the adapter `key`, or the configured name without a live list.
    pub id: String,
    /// Other names it answers to (`engineAgentKey`, `model`).
    pub other_names: Vec<String>,
    /// `owned_by` on `/v1/models`.
    pub provider: Option<String>,
    /// `None` when unknown (configured list): images are then refused.
    pub supports_images: Option<bool>,
    /// The web agent serves it (cookie accounts).
    pub web: bool,
    /// The CLI API serves it (`cto login` accounts), under this id.
    pub cli_id: Option<String>,
}

impl CatalogModel {
    fn answers_to(&self, name: &str) -> bool {
        std::iter::once(&self.id)
            .chain(&self.other_names)
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// One snapshot of the catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    models: Vec<CatalogModel>,
    /// Every name of the adapters left out (disabled, or paid without `INCLUDE_PAID_MODELS`):
    /// a client naming one gets a 404, never a stand-in by the Claude family rule.
    excluded: Vec<String>,
    aliases: Vec<(String, String)>,
    default: String,
    live: bool,
}

impl Catalog {
    /// The configured `MODELS`: what is offered without a live list.
    pub fn configured(settings: &CatalogSettings) -> Catalog {
        Catalog {
            models: settings
                .models
                .iter()
                .map(|m| CatalogModel {
                    id: m.clone(),
                    other_names: Vec::new(),
                    provider: None,
                    supports_images: None,
                    web: true,
                    cli_id: None,
                })
                .collect(),
            excluded: Vec::new(),
            aliases: settings.aliases.clone(),
            default: settings.default_model.clone(),
            live: false,
        }
    }

    /// The live list: enabled adapters, paid ones only when `include_paid`, each key once.
    pub fn from_adapters(adapters: &[Adapter], settings: &CatalogSettings) -> Catalog {
        let mut models: Vec<CatalogModel> = Vec::with_capacity(adapters.len());
        let mut excluded = Vec::new();
        for a in adapters {
            let paid = a.minimum_tier.unwrap_or(0) > 0;
            if a.enabled == Some(false) || (paid && !settings.include_paid) {
                excluded.extend(
                    [
                        Some(a.key.clone()),
                        a.engine_agent_key.clone(),
                        a.model.clone(),
                    ]
                    .into_iter()
                    .flatten(),
                );
                continue;
            }
            if models.iter().any(|m| m.id.eq_ignore_ascii_case(&a.key)) {
                continue;
            }
            models.push(CatalogModel {
                id: a.key.clone(),
                other_names: [a.engine_agent_key.clone(), a.model.clone()]
                    .into_iter()
                    .flatten()
                    .filter(|n| !n.is_empty())
                    .collect(),
                provider: a.provider.clone().filter(|p| !p.is_empty()),
                supports_images: a.supports_images,
                web: true,
                cli_id: None,
            });
        }
        Catalog {
            models,
            excluded,
            aliases: settings.aliases.clone(),
            default: settings.default_model.clone(),
            live: true,
        }
    }

    /// This catalogue with the CLI door's models joined: a CLI id that names a web model
    /// (by any of its names) marks that model as served by both doors; the others become
    /// models of their own. Without cookie accounts (`web: false`) the web models go.
    pub fn with_cli(&self, cli_ids: &[String], web: bool) -> Catalog {
        let mut c = self.clone();
        if !web {
            c.models.clear();
        }
        for id in cli_ids {
            match c.models.iter_mut().find(|m| m.answers_to(id)) {
                Some(m) => m.cli_id = Some(id.clone()),
                None => c.models.push(CatalogModel {
                    id: id.clone(),
                    other_names: Vec::new(),
                    provider: None,
                    supports_images: None,
                    web: false,
                    cli_id: Some(id.clone()),
                }),
            }
        }
        if !cli_ids.is_empty() {
            c.live = c.live || !web;
        }
        c
    }

    /// Whether this came from `GET /chat/adapters` (else: the configured list).
    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn models(&self) -> &[CatalogModel] {
        &self.models
    }

    /// The model a name means: a model's own name first, then a `MODEL_ALIASES` alias (one
    /// level), then the Claude family rule ([`Catalog::claude_family`]).
    pub fn find(&self, name: &str) -> Option<&CatalogModel> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        self.find_named(name).or_else(|| self.claude_family(name))
    }

    /// A model's own name, then a `MODEL_ALIASES` alias (one level).
    fn find_named(&self, name: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|m| m.answers_to(name)).or_else(|| {
            let (_, target) = self
                .aliases
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(name))?;
            self.models.iter().find(|m| m.answers_to(target))
        })
    }

    /// Anthropic model names (`claude-sonnet-4-5`, dated variants, `claude-opus-*`,
    /// `claude-haiku-*`, `claude-3-5-*`), which Claude Code sends, mean the closest model on
    /// offer: one of the same family (a name containing `opus`, `sonnet` or `haiku`), else
    /// any Claude model (Sonnet first), else the default model. `MODEL_ALIASES` overrides it.
    pub fn claude_family(&self, name: &str) -> Option<&CatalogModel> {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with("claude")
            || self.excluded.iter().any(|n| n.eq_ignore_ascii_case(name))
        {
            return None;
        }
        let family = ["opus", "haiku", "sonnet"]
            .into_iter()
            .find(|f| lower.contains(f))
            .unwrap_or("sonnet");
        let named = |word: &str| {
            self.models.iter().find(|m| {
                std::iter::once(&m.id)
                    .chain(&m.other_names)
                    .any(|n| n.to_ascii_lowercase().contains(word))
            })
        };
        named(family)
            .or_else(|| named("sonnet"))
            .or_else(|| named("claude"))
            .or_else(|| self.find_named(&self.default))
            .or_else(|| self.models.first())
    }

    /// The Claude names `/v1/models` lists (Claude Code keeps the ids that start with
    /// `claude` when it discovers a gateway's models), each resolving by the family rule.
    pub const CLAUDE_ALIASES: [&'static str; 3] =
        ["claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5"];

    /// What a request means: the named model, or the default one (`DEFAULT_MODEL` when it is
    /// on offer, else the first model listed). `Err` carries the unknown name.
    pub fn resolve(&self, requested: Option<&str>) -> Result<&CatalogModel, String> {
        match requested {
            Some(name) => self.find(name).ok_or_else(|| name.to_string()),
            None => self
                .find(&self.default)
                .or_else(|| self.models.first())
                .ok_or_else(|| self.default.clone()),
        }
    }

    /// Aliases whose target is not in this catalogue (logged after a refresh).
    pub fn dangling_aliases(&self) -> Vec<&str> {
        self.aliases
            .iter()
            .filter(|(_, t)| !self.models.iter().any(|m| m.answers_to(t)))
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default settings changed by these flag pairs (the catalogue's own flags only).
    fn config(flags: &[&str]) -> Result<CatalogSettings, String> {
        let mut s = CatalogSettings {
            models: vec!["ClaudeSonnet4_5".into(), "GPT5".into()],
            default_model: "ClaudeSonnet4_5".into(),
            aliases: Vec::new(),
            include_paid: false,
            refresh: std::time::Duration::from_secs(600),
            max_image_bytes: 5_242_880,
        };
        for pair in flags.chunks(2) {
            match pair {
                ["--model-aliases", v] => s.aliases = parse_aliases(v)?,
                ["--models", v] => {
                    s.models = v.split(',').map(str::to_string).collect();
                    s.default_model = s.models[0].clone();
                }
                ["--default-model", v] => s.default_model = (*v).to_string(),
                ["--include-paid-models", v] => s.include_paid = *v == "true",
                other => panic!("not a catalogue flag: {other:?}"),
            }
        }
        Ok(s)
    }

    fn adapter(key: &str, engine: &str, model: &str, tier: i64, enabled: bool) -> Adapter {
        Adapter {
            key: key.into(),
            engine_agent_key: Some(engine.into()),
            model: Some(model.into()),
            provider: Some("openai".into()),
            minimum_tier: Some(tier),
            enabled: Some(enabled),
            supports_images: Some(true),
            ..Adapter::default()
        }
    }

    #[test]
    fn claude_names_take_the_closest_model_but_never_an_excluded_one() {
        let c = config(&["--model-aliases", "claude-haiku-4-5=gpt_5_4"]).expect("valid");
        let cat = Catalog::from_adapters(
            &[
                adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true),
                adapter(
                    "claude_sonnet_4_5",
                    "ClaudeSonnet4_5",
                    "claude-sonnet-4.5",
                    0,
                    true,
                ),
                adapter(
                    "claude_opus_4_6",
                    "ClaudeOpus4_6",
                    "claude-opus-4.6",
                    1,
                    true,
                ),
            ],
            &c,
        );
        let id = |n: &str| cat.find(n).map(|m| m.id.clone());
        assert_eq!(
            id("claude-sonnet-4-5-20250929").as_deref(),
            Some("claude_sonnet_4_5")
        );
        assert_eq!(
            id("claude-3-5-sonnet-latest").as_deref(),
            Some("claude_sonnet_4_5")
        );
        // No opus on offer (paid): the closest is Sonnet; the paid model's own names stay 404.
        assert_eq!(id("claude-opus-4-1").as_deref(), Some("claude_sonnet_4_5"));
        assert_eq!(id("claude-opus-4.6"), None);
        assert_eq!(id("ClaudeOpus4_6"), None);
        // MODEL_ALIASES wins over the family rule.
        assert_eq!(id("claude-haiku-4-5").as_deref(), Some("gpt_5_4"));
        assert_eq!(id("gpt-unknown"), None);
        // Without any Claude model the default stands in (and a Claude default never loops).
        let only_gpt =
            config(&["--models", "claude-x,GPT5", "--default-model", "claude-x"]).expect("valid");
        let cat = Catalog::from_adapters(
            &[adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true)],
            &only_gpt,
        );
        assert_eq!(
            cat.find("claude-sonnet-4-5").map(|m| m.id.as_str()),
            Some("gpt_5_4")
        );
    }

    #[test]
    fn live_names_aliases_and_filters() {
        let c = config(&["--model-aliases", "gpt-4o=GPT5_4"]).expect("valid");
        let cat = Catalog::from_adapters(
            &[
                adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true),
                adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true),
                adapter("old", "Old", "old-1", 0, false),
                adapter("pro", "Pro", "pro-1", 1, true),
            ],
            &c,
        );
        assert!(cat.is_live());
        assert_eq!(cat.models().len(), 1);
        for name in ["gpt_5_4", "GPT5_4", "GPT-5.4", "Gpt-4O"] {
            assert_eq!(cat.find(name).map(|m| m.id.as_str()), Some("gpt_5_4"));
        }
        assert!(cat.find("old").is_none() && cat.find("pro").is_none());
        // DEFAULT_MODEL (ClaudeSonnet4_5) is not offered: the first model is the default.
        assert_eq!(cat.resolve(None).map(|m| m.id.as_str()), Ok("gpt_5_4"));
        assert_eq!(
            cat.resolve(Some("nope")).map(|m| m.id.clone()),
            Err("nope".into())
        );
        let paid = config(&["--include-paid-models", "true"]).expect("valid");
        let cat = Catalog::from_adapters(&[adapter("pro", "Pro", "pro-1", 1, true)], &paid);
        assert!(cat.find("pro-1").is_some());
    }

    #[test]
    fn configured_list_without_live_data() {
        let c = config(&["--model-aliases", "fast=gpt5"]).expect("valid");
        let cat = Catalog::configured(&c);
        assert!(!cat.is_live());
        assert_eq!(
            cat.resolve(None).map(|m| m.id.as_str()),
            Ok("ClaudeSonnet4_5")
        );
        assert_eq!(cat.find("FAST").map(|m| m.id.as_str()), Some("GPT5"));
        assert_eq!(cat.find("gpt5").and_then(|m| m.supports_images), None);
    }
}
