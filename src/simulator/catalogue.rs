//! The simulated model catalogue: what `GET /chat/adapters` lists and
//! which models a trigger may name.

/// One entry of the fixed model catalogue.
pub(crate) struct Model {
    pub key: &'static str,
    pub model: &'static str,
    pub engine_agent_key: &'static str,
    pub provider: &'static str,
    pub usage_multiplier: u64,
    pub supports_images: bool,
    /// 0 = free; above that, a paid tier.
    pub minimum_tier: u64,
    /// A disabled adapter is listed but cannot be selected.
    pub enabled: bool,
}

pub(crate) const CATALOGUE: &[Model] = &[
    Model {
        key: "gpt_5_4",
        model: "gpt-5.4",
        engine_agent_key: "GPT5_4",
        provider: "openai",
        usage_multiplier: 3,
        supports_images: true,
        minimum_tier: 0,
        enabled: true,
    },
    Model {
        key: "gpt_5",
        model: "gpt-5",
        engine_agent_key: "GPT5",
        provider: "openai",
        usage_multiplier: 3,
        supports_images: true,
        minimum_tier: 0,
        enabled: true,
    },
    Model {
        key: "claude_sonnet_4_5",
        model: "claude-sonnet-4.5",
        engine_agent_key: "ClaudeSonnet4_5",
        provider: "anthropic",
        usage_multiplier: 4,
        supports_images: true,
        minimum_tier: 0,
        enabled: true,
    },
    Model {
        key: "glm_5_1",
        model: "glm-5.1",
        engine_agent_key: "GLM5_1",
        provider: "openrouter",
        usage_multiplier: 2,
        supports_images: false,
        minimum_tier: 0,
        enabled: true,
    },
    Model {
        key: "claude_opus_4_6",
        model: "claude-opus-4.6",
        engine_agent_key: "ClaudeOpus4_6",
        provider: "anthropic",
        usage_multiplier: 8,
        supports_images: true,
        minimum_tier: 1,
        enabled: true,
    },
    Model {
        key: "old_model",
        model: "old-model-1",
        engine_agent_key: "OldModel",
        provider: "openai",
        usage_multiplier: 1,
        supports_images: false,
        minimum_tier: 0,
        enabled: false,
    },
];

/// A catalogue entry by `key` or `engineAgentKey`.
pub(crate) fn find_model(name: &str) -> Option<&'static Model> {
    CATALOGUE
        .iter()
        .find(|m| m.key == name || m.engine_agent_key == name)
}
