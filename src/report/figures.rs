//! The report's per-endpoint evidence besides outcomes and latencies, for
//! the metrics (`shadowtap_*` copied at each scrape): load, the replayer's
//! health and the most frequent differing fields. Out: one
//! [`EndpointFigures`] per endpoint, under the names the report has now.

use super::{FieldCount, Report};
use crate::replay::config::VerdictConfig;
use crate::replay::load::{EndpointLoad, Health};

/// What a fleet verdict needs of one endpoint that outcome counters and
/// latency histograms do not carry.
pub struct EndpointFigures {
    pub endpoint: String,
    pub load: EndpointLoad,
    pub health: Health,
    /// The most frequent differing fields, at most `fields_kept`.
    pub fields: Vec<FieldCount>,
}

impl Report {
    pub fn figures(&self, verdict: &VerdictConfig, fields_kept: usize) -> Vec<EndpointFigures> {
        self.endpoints
            .iter()
            .map(|(name, stats)| {
                let (load, health) = self.load.endpoint(name, verdict);
                let mut fields: Vec<FieldCount> =
                    stats.fields.iter().map(|(path, count)| FieldCount { path: path.clone(), count: *count }).collect();
                fields.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
                fields.truncate(fields_kept);
                EndpointFigures { endpoint: name.clone(), load, health, fields }
            })
            .collect()
    }
}
