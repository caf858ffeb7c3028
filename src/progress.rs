//! One look for every long job: a bar with position, rate, elapsed time and ETA.
//! Bars draw to stderr and hide themselves when stderr is not a terminal (tests, CI logs),
//! unless `SYNTHLM_PROGRESS=1` forces them on.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if std::env::var("SYNTHLM_PROGRESS").as_deref() == Ok("1") {
        ProgressDrawTarget::stderr_with_hz(2)
    } else if std::env::var("SYNTHLM_PROGRESS").as_deref() == Ok("0") {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A bar over `total` units (`unit` is shown, e.g. "docs", "tokens", "steps").
pub fn bar(total: u64, unit: &str, label: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target());
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{prefix:>10}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} \
             ({{per_sec}}, ETA {{eta}}) {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// A bar over bytes of input (for readers, where the byte size is known up front).
pub fn bytes_bar(total: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target());
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
             ({binary_bytes_per_sec}, ETA {eta}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}
