//! The catalogue's settings, read from the raw config: `MODEL_ALIASES` (validated: each item
//! `alias=model`, no alias twice, none naming itself), `INCLUDE_PAID_MODELS`, `MODEL_REFRESH`,
//! `MAX_IMAGE_BYTES`. Alias targets are checked against the live list when it arrives (a
//! warning), as it is not known at start.

use std::time::Duration;

use crate::config::{ConfigArgs, ConfigError, parse_duration};

/// The catalogue's settings (part of [`crate::config::Config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSettings {
    /// `(alias, target)` pairs, as configured (matched case-insensitively).
    pub aliases: Vec<(String, String)>,
    /// Offer adapters with `minimumTier` > 0 too.
    pub include_paid: bool,
    /// Interval of the background refresh.
    pub refresh: Duration,
    /// Largest image accepted per request item, decoded.
    pub max_image_bytes: usize,
}

fn bad(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

impl CatalogSettings {
    pub fn from_args(a: &ConfigArgs) -> Result<Self, ConfigError> {
        let mut aliases: Vec<(String, String)> = Vec::new();
        for item in a.model_aliases.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let Some((alias, target)) = item
                .split_once('=')
                .map(|(l, r)| (l.trim(), r.trim()))
                .filter(|(l, r)| !l.is_empty() && !r.is_empty())
            else {
                return Err(bad(
                    "MODEL_ALIASES",
                    format!("`{item}` is not `alias=model` (e.g. gpt-4o=gpt_5_4)"),
                ));
            };
            if aliases.iter().any(|(a, _)| a.eq_ignore_ascii_case(alias)) {
                return Err(bad("MODEL_ALIASES", format!("`{alias}` is given twice")));
            }
            if alias.eq_ignore_ascii_case(target) {
                return Err(bad("MODEL_ALIASES", format!("`{alias}` names itself")));
            }
            aliases.push((alias.to_string(), target.to_string()));
        }
        let include_paid = match a.include_paid_models.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            other => {
                return Err(bad(
                    "INCLUDE_PAID_MODELS",
                    format!("`{other}` is not true or false"),
                ));
            }
        };
        let refresh = parse_duration("MODEL_REFRESH", &a.model_refresh)?;
        if refresh < Duration::from_secs(1) {
            return Err(bad("MODEL_REFRESH", "must be at least 1s"));
        }
        let max_image_bytes: usize = a
            .max_image_bytes
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("MAX_IMAGE_BYTES", "must be a positive number of bytes"))?;
        Ok(CatalogSettings {
            aliases,
            include_paid,
            refresh,
            max_image_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut v = vec!["--store", "memory"];
        v.extend_from_slice(extra);
        Config::from_args(&crate::config::test_args(&v))
    }

    #[test]
    fn aliases_are_validated() {
        for bad in ["x", "=y", "x=", "a=b,A=c", "a=a"] {
            let e = config(&["--model-aliases", bad]).expect_err(bad);
            assert_eq!(e.setting, "MODEL_ALIASES", "{bad}");
        }
        let c = config(&["--model-aliases", " gpt-4o = gpt_5_4 ,, x=y"]).expect("valid");
        assert_eq!(
            c.catalog.aliases,
            [
                ("gpt-4o".into(), "gpt_5_4".into()),
                ("x".into(), "y".into())
            ]
        );
        assert!(config(&["--include-paid-models", "maybe"]).is_err());
        assert!(config(&["--max-image-bytes", "0"]).is_err());
    }
}
