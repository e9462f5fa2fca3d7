//! [`Worker`]: a named OS thread that runs only while it has work, shared by the decode stage and the
//! JPEG encoder. Starting is idempotent and race-free against stopping: a consumer that arrives
//! while the thread is deciding to stop either sees it still running (and the thread sees the
//! consumer on its final check), or starts a new one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::warn;

/// The running flag of one on-demand thread.
#[derive(Debug, Default)]
pub struct Worker {
    running: AtomicBool,
}

impl Worker {
    /// True while the thread runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Starts thread `name` for `owner` unless it runs already. The thread calls `run` until it
    /// returns while `wanted` is false. `worker` finds this flag in the owner.
    pub fn ensure<T: Send + Sync + 'static>(
        owner: &Arc<T>,
        worker: fn(&T) -> &Worker,
        name: String,
        camera: &str,
        wanted: fn(&T) -> bool,
        run: fn(&T),
    ) {
        let flag = &worker(owner).running;
        // Every consumer calls this often: read before writing, so the common case does not bounce
        // the cache line between cores.
        if flag.load(Ordering::SeqCst) || flag.swap(true, Ordering::SeqCst) {
            return;
        }
        let h = owner.clone();
        let span = tracing::info_span!("camera", id = %camera);
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _enter = span.enter();
                loop {
                    run(&h);
                    let flag = &worker(&h).running;
                    flag.store(false, Ordering::SeqCst);
                    // A consumer that arrived while this thread was deciding to stop saw the flag set
                    // and did not start one: check again.
                    if !wanted(&h) || flag.swap(true, Ordering::SeqCst) {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            warn!("cannot start the thread {name}: {e}");
            flag.store(false, Ordering::SeqCst);
        }
    }
}
