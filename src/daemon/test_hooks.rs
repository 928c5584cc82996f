//! Test-only: a way to end the replay dispatcher from outside, since
//! nothing honest does on demand. `SHADOWTAP_TEST_KILL_DISPATCHER_AFTER=N`
//! (read once, when the dispatcher starts) ends its task once the pipeline
//! has rebuilt N exchanges, as a dispatcher that died would. Not for
//! production use; unset (the normal case), the dispatcher runs as is.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::pipeline::Progress;

const KILL_DISPATCHER_AFTER: &str = "SHADOWTAP_TEST_KILL_DISPATCHER_AFTER";

/// The dispatcher's task: `run`, or, under the test hook, `run` until N
/// exchanges were rebuilt.
pub(super) async fn dispatcher(run: impl Future<Output = ()>, progress: Arc<Progress>) {
    let Some(after) = std::env::var(KILL_DISPATCHER_AFTER).ok().and_then(|v| v.parse::<u64>().ok()) else {
        return run.await;
    };
    let enough = async {
        while progress.exchanges.load(Ordering::Relaxed) < after {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        () = run => {}
        () = enough => tracing::warn!("{KILL_DISPATCHER_AFTER}={after}: the replay dispatcher is ended (test hook)"),
    }
}
