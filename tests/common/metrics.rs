//! Reading `/metrics` in tests: the Prometheus text as series and values, and the total of a
//! metric family (all its label sets; a histogram by its `_count`).

use super::Harness;

/// One scrape of `/metrics`: `(series, value)` per sample line.
pub struct Scrape(pub Vec<(String, f64)>);

impl Scrape {
    /// The sum over every series of `family` (histograms: of `family_count`), `None` when the
    /// family has no series at all.
    pub fn total(&self, family: &str) -> Option<f64> {
        let count = format!("{family}_count");
        let of = |name: &str| {
            let mut found = None;
            for (series, v) in &self.0 {
                let rest = series.strip_prefix(name);
                if rest.is_some_and(|r| r.is_empty() || r.starts_with('{')) {
                    *found.get_or_insert(0.0) += v;
                }
            }
            found
        };
        of(&count).or_else(|| of(family))
    }

    /// The value of one exact series, e.g. `el2a_accounts{state="active"}`.
    pub fn series(&self, series: &str) -> Option<f64> {
        self.0.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
    }
}

/// Parses the Prometheus text format (comments skipped).
pub fn parse(text: &str) -> Scrape {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        if let Some((series, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.push((series.to_string(), v));
        }
    }
    Scrape(out)
}

impl Harness {
    /// The proxy's `/metrics` now.
    pub async fn scrape(&self) -> Scrape {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        parse(&text)
    }
}
