//! The catalogue's settings ([`CatalogSettings`], built by `config`) and the one rule that is
//! the catalogue's own: how `MODEL_ALIASES` reads. Alias targets are checked against the live
//! list when it arrives (a warning), as it is not known at start.

use std::time::Duration;

/// The catalogue's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSettings {
    /// The configured `MODELS`: what is offered without a live list.
    pub models: Vec<String>,
    /// `DEFAULT_MODEL`, else the first of `models`.
    pub default_model: String,
    /// `(alias, target)` pairs, as configured (matched case-insensitively).
    pub aliases: Vec<(String, String)>,
    /// Offer adapters with `minimumTier` > 0 too.
    pub include_paid: bool,
    /// Interval of the background refresh.
    pub refresh: Duration,
    /// Largest image accepted per request item, decoded.
    pub max_image_bytes: usize,
}

/// `MODEL_ALIASES`: comma-separated `alias=model` items, no alias twice, none naming itself.
pub fn parse_aliases(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut aliases: Vec<(String, String)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((alias, target)) = item
            .split_once('=')
            .map(|(l, r)| (l.trim(), r.trim()))
            .filter(|(l, r)| !l.is_empty() && !r.is_empty())
        else {
            return Err(format!(
                "`{item}` is not `alias=model` (e.g. gpt-4o=gpt_5_4)"
            ));
        };
        if aliases.iter().any(|(a, _)| a.eq_ignore_ascii_case(alias)) {
            return Err(format!("`{alias}` is given twice"));
        }
        if alias.eq_ignore_ascii_case(target) {
            return Err(format!("`{alias}` names itself"));
        }
        aliases.push((alias.to_string(), target.to_string()));
    }
    Ok(aliases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_validated() {
        for bad in ["x", "=y", "x=", "a=b,A=c", "a=a"] {
            assert!(parse_aliases(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_aliases(" gpt-4o = gpt_5_4 ,, x=y"),
            Ok(vec![
                ("gpt-4o".into(), "gpt_5_4".into()),
                ("x".into(), "y".into())
            ])
        );
    }
}
