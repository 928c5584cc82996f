//! `shadowtap_ebpf_*`: the eBPF source's counters (kernel side, read from
//! the program's per-CPU map, and the reader's), registered only when the
//! eBPF source runs.

use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ebpf::EbpfCounters;

#[derive(Default)]
pub struct EbpfMetrics {
    events: Counter,
    bytes: Counter,
    ring_buffer_drops: Counter,
    chunks_cut: Counter,
    skipped_bytes: Counter,
    connections_opened: Counter,
    connections_refused: Counter,
    connections_tracked: Gauge,
    tls_not_decrypted: Counter,
    tls_unmatched: Counter,
    sampled_out: Counter,
    tls_probed_processes: Gauge,
}

impl EbpfMetrics {
    pub fn register(registry: &mut Registry) -> EbpfMetrics {
        let m = EbpfMetrics::default();
        let sub = registry.sub_registry_with_prefix("ebpf");
        sub.register("events", "Events the BPF program wrote to the ring buffer", m.events.clone());
        sub.register("bytes", "Socket bytes (plaintext for TLS) copied to the ring buffer", m.bytes.clone());
        sub.register(
            "ring_buffer_drops",
            "Events lost because the ring buffer was full (their exchanges are marked gap)",
            m.ring_buffer_drops.clone(),
        );
        sub.register(
            "chunks_cut",
            "Calls whose bytes could not all be copied (too many, unreadable): a gap",
            m.chunks_cut.clone(),
        );
        sub.register("skipped_bytes", "Bytes that went by unread (sendfile, cut calls)", m.skipped_bytes.clone());
        sub.register("connections_opened", "Accepted sockets of watched processes", m.connections_opened.clone());
        sub.register(
            "connections_refused",
            "Sockets or calls not tracked because a kernel table was full",
            m.connections_refused.clone(),
        );
        sub.register(
            "connections_tracked",
            "Connections whose byte streams are followed now",
            m.connections_tracked.clone(),
        );
        sub.register(
            "tls_not_decrypted",
            "TLS connections whose plaintext is not read: --tls off, no libssl, or a process not probed yet",
            m.tls_not_decrypted.clone(),
        );
        sub.register(
            "tls_unmatched",
            "SSL reads or writes whose socket could not be told (their bytes are lost)",
            m.tls_unmatched.clone(),
        );
        sub.register(
            "connections_sampled_out",
            "Accepted sockets not followed because of --sample (decided in the kernel)",
            m.sampled_out.clone(),
        );
        sub.register(
            "tls_probed_processes",
            "Watched processes whose libssl is probed (new ones within 100 ms)",
            m.tls_probed_processes.clone(),
        );
        m
    }

    pub fn refresh(&self, c: &EbpfCounters, tracked: u64) {
        let set = |m: &Counter, v: &std::sync::atomic::AtomicU64| {
            m.inner().store(v.load(Ordering::Relaxed), Ordering::Relaxed)
        };
        set(&self.events, &c.events);
        set(&self.bytes, &c.bytes);
        set(&self.ring_buffer_drops, &c.ring_buffer_drops);
        set(&self.chunks_cut, &c.chunks_cut);
        set(&self.skipped_bytes, &c.skipped_bytes);
        set(&self.connections_opened, &c.connections_opened);
        set(&self.connections_refused, &c.connections_refused);
        set(&self.tls_not_decrypted, &c.tls_not_decrypted);
        set(&self.tls_unmatched, &c.tls_unmatched);
        set(&self.sampled_out, &c.sampled_out);
        self.connections_tracked.set(tracked as i64);
        self.tls_probed_processes.set(c.tls_probed_processes.load(Ordering::Relaxed) as i64);
    }
}
