//! Per-endpoint evidence copied from the report at each scrape, so a fleet
//! verdict (`shadowtap verdict --prometheus`) judges what the report
//! judges: replay's and production's in-flight counts, late starts, queue
//! drops, capture gaps, the most frequent differing fields, and the
//! criteria the tap judges with. In: [`EndpointFigures`] and the report's
//! [`Criteria`]; out: `shadowtap_*` families. Families are cleared before
//! each copy: an endpoint renamed by learning leaves no stale series.

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::report::Criteria;
use crate::report::figures::EndpointFigures;

/// Differing fields exported per endpoint (the report's `top_fields`).
pub const FIELDS_EXPORTED: usize = 5;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EndpointLabel {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldLabels {
    endpoint: String,
    field: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CriteriaLabel {
    criteria: String,
}

type Counters = Family<EndpointLabel, Counter>;
type Gauges = Family<EndpointLabel, Gauge>;

/// Sums of one endpoint label (several endpoints may share "other").
#[derive(Default)]
struct Sums {
    samples: u64,
    recorded_sum: u64,
    replay_sum: u64,
    recorded_peak: i64,
    replay_peak: i64,
    late: u64,
    queue_drops: u64,
    capture_gaps: u64,
}

#[derive(Default)]
pub(super) struct Evidence {
    samples: Counters,
    recorded_sum: Counters,
    replay_sum: Counters,
    recorded_peak: Gauges,
    replay_peak: Gauges,
    late: Counters,
    queue_drops: Counters,
    capture_gaps: Counters,
    field_diffs: Family<FieldLabels, Counter>,
    criteria: Family<CriteriaLabel, Gauge>,
}

impl Evidence {
    pub(super) fn register(&self, registry: &mut Registry) {
        let counters = [
            ("load_samples", "Replayed requests behind the in-flight figures, per endpoint", &self.samples),
            ("recorded_in_flight_sum", "Sum of production's in flight at each replayed request", &self.recorded_sum),
            ("replay_in_flight_sum", "Sum of replay's in flight at each replayed request", &self.replay_sum),
            ("started_late", "Requests taken up later than [verdict] late_start_ms", &self.late),
            ("endpoint_queue_drops", "Exchanges dropped before replay (queue full), per endpoint", &self.queue_drops),
            ("capture_gaps", "Exchanges not replayed because a capture gap touched them", &self.capture_gaps),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "recorded_in_flight_peak",
            "Production's peak in flight since start",
            self.recorded_peak.clone(),
        );
        registry.register("replay_in_flight_peak", "Replay's peak in flight since start", self.replay_peak.clone());
        registry.register(
            "field_diffs",
            "Differences at a field, for each endpoint's most frequent differing fields",
            self.field_diffs.clone(),
        );
        registry.register("criteria_info", "The readiness criteria this tap judges with (JSON)", self.criteria.clone());
    }

    /// Copies the report's figures in, under `label` of each endpoint.
    pub(super) fn copy(&self, figures: &[EndpointFigures], criteria: &Criteria, label: impl Fn(&str) -> String) {
        let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
        let mut fields: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in figures {
            let name = label(&f.endpoint);
            let s = sums.entry(name.clone()).or_default();
            s.samples += f.load.samples;
            s.recorded_sum += f.load.recorded_in_flight_sum;
            s.replay_sum += f.load.replay_in_flight_sum;
            s.recorded_peak = s.recorded_peak.max(i64::from(f.load.recorded.peak_in_flight));
            s.replay_peak = s.replay_peak.max(i64::from(f.load.replay.peak_in_flight));
            s.late += f.health.started_late;
            s.queue_drops += f.health.queue_drops;
            s.capture_gaps += f.health.capture_gaps;
            for field in f.fields.iter().take(FIELDS_EXPORTED) {
                *fields.entry((name.clone(), field.path.clone())).or_default() += field.count;
            }
        }
        self.clear();
        let set = |family: &Counters, endpoint: &str, v: u64| {
            let label = EndpointLabel { endpoint: endpoint.to_string() };
            family.get_or_create(&label).inner().store(v, std::sync::atomic::Ordering::Relaxed);
        };
        for (endpoint, s) in &sums {
            set(&self.samples, endpoint, s.samples);
            set(&self.recorded_sum, endpoint, s.recorded_sum);
            set(&self.replay_sum, endpoint, s.replay_sum);
            set(&self.late, endpoint, s.late);
            set(&self.queue_drops, endpoint, s.queue_drops);
            set(&self.capture_gaps, endpoint, s.capture_gaps);
            let label = EndpointLabel { endpoint: endpoint.clone() };
            self.recorded_peak.get_or_create(&label).set(s.recorded_peak);
            self.replay_peak.get_or_create(&label).set(s.replay_peak);
        }
        for ((endpoint, field), n) in fields {
            let labels = FieldLabels { endpoint, field };
            self.field_diffs.get_or_create(&labels).inner().store(n, std::sync::atomic::Ordering::Relaxed);
        }
        let criteria = serde_json::to_string(criteria).unwrap_or_default();
        self.criteria.get_or_create(&CriteriaLabel { criteria }).set(1);
    }

    fn clear(&self) {
        for family in [&self.samples, &self.recorded_sum, &self.replay_sum, &self.late, &self.queue_drops] {
            family.clear();
        }
        self.capture_gaps.clear();
        self.recorded_peak.clear();
        self.replay_peak.clear();
        self.field_diffs.clear();
        self.criteria.clear();
    }
}
