//! Ctrl-C and SIGTERM: one flag per process, which the trainer polls at every step boundary
//! and answers by saving a checkpoint and stopping. The commands that train (`train`,
//! `launch`, `experiment`) [`install`] the handler; library code only reads the flag if one
//! was installed ([`installed`]), so a test harness or a notebook keeps its own signals.
//! SIGTERM counts too because a background job (`nohup ... &`) ignores SIGINT, and `kill`
//! is how one stops it; before this, stopping an experiment lost the run in progress (its
//! only checkpoint is at its last step).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Install the handler (once per process) and return the flag. A process that already has a
/// handler keeps it, and the flag stays down.
pub fn install() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if !f.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted: saving a checkpoint at the end of this step ...");
            }
        });
        flag
    })
    .clone()
}

/// The flag, if a command installed the handler.
pub fn installed() -> Option<Arc<AtomicBool>> {
    FLAG.get().cloned()
}
