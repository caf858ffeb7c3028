//! One look for every long job: a bar with position, rate, elapsed time and ETA.
//!
//! Every bar joins one process-wide [`MultiProgress`], so a bar over runs and the bar of the
//! run in progress (an experiment's grid trains its runs with their own step bars) draw as a
//! stack instead of overwriting each other. On a terminal the stack redraws in place. When
//! stderr is not a terminal (a background job's log, CI) it is written as plain lines, at
//! most one batch a minute and only the lines that changed, so an experiment left running
//! with `nohup` shows its position and ETA in its log without flooding it, and a job shorter
//! than a minute writes nothing. `SYNTHLM_PROGRESS=0` hides every bar; `SYNTHLM_PROGRESS=1`
//! draws to stderr as if it were a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a log (not a terminal) gets a batch of progress lines.
const LOG_EVERY: Duration = Duration::from_secs(60);

fn target() -> ProgressDrawTarget {
    match std::env::var("SYNTHLM_PROGRESS").as_deref() {
        Ok("1") => ProgressDrawTarget::stderr_with_hz(2),
        Ok("0") => ProgressDrawTarget::hidden(),
        _ if std::io::stderr().is_terminal() => ProgressDrawTarget::stderr(),
        _ => ProgressDrawTarget::term_like_with_hz(Box::new(LogLines::new(LOG_EVERY)), 1),
    }
}

/// The stack every bar joins.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(target()))
}

/// A "terminal" that turns redraws into log lines: it collects what indicatif draws and, on a
/// flush at least `every` after the last batch, writes the lines that differ from the last
/// batch it wrote (a finished bar, unchanged, is not repeated).
#[derive(Debug)]
pub struct LogLines {
    every: Duration,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    drawing: Vec<String>,
    written: Vec<String>,
    last: Instant,
}

impl LogLines {
    pub fn new(every: Duration) -> Self {
        let state = LogState {
            drawing: Vec::new(),
            written: Vec::new(),
            last: Instant::now(),
        };
        LogLines {
            every,
            state: Mutex::new(state),
        }
    }

    /// The lines a flush now would write (and records them as written), or none if the last
    /// batch was less than `every` ago.
    pub fn take_batch(&self) -> Vec<String> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<String> = std::mem::take(&mut s.drawing)
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect();
        if lines.is_empty() || s.last.elapsed() < self.every {
            return Vec::new();
        }
        let new: Vec<String> = lines
            .iter()
            .filter(|l| !s.written.contains(l))
            .cloned()
            .collect();
        s.last = Instant::now();
        s.written = lines;
        new
    }

    fn push(&self, text: &str, newline: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.drawing.last_mut() {
            Some(l) if !l.ends_with('\n') => l.push_str(text),
            _ => s.drawing.push(text.to_string()),
        }
        if newline {
            if let Some(l) = s.drawing.last_mut() {
                l.push('\n');
            }
        }
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.push(s, true);
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.push(s, false);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        let batch = self.take_batch();
        let mut err = std::io::stderr().lock();
        for l in batch {
            writeln!(err, "{}", l.trim_end())?;
        }
        err.flush()
    }
}

fn styled(pb: ProgressBar, template: &str, label: &str) -> ProgressBar {
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    multi().add(pb)
}

/// A bar over `total` units (`unit` is shown, e.g. "docs", "tokens", "steps").
pub fn bar(total: u64, unit: &str, label: &str) -> ProgressBar {
    let template = format!(
        "{{prefix:>10}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} \
         ({{per_sec}}, ETA {{eta}}) {{msg}}"
    );
    styled(ProgressBar::new(total), &template, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_write_changed_lines_at_most_once_per_interval() {
        let t = LogLines::new(Duration::from_millis(50));
        t.write_line("runs 1/9").unwrap();
        assert!(t.take_batch().is_empty(), "nothing before the interval");
        std::thread::sleep(Duration::from_millis(60));
        t.write_line("runs 1/9").unwrap();
        t.write_str("train 10/").unwrap();
        t.write_str("100").unwrap();
        assert_eq!(t.take_batch(), vec!["runs 1/9\n", "train 10/100"]);
        t.write_line("runs 1/9").unwrap();
        t.write_line("train 90/100").unwrap();
        assert!(t.take_batch().is_empty(), "again too soon");
        std::thread::sleep(Duration::from_millis(60));
        t.write_line("runs 1/9").unwrap();
        t.write_line("train 95/100").unwrap();
        assert_eq!(
            t.take_batch(),
            vec!["train 95/100\n"],
            "an unchanged line is not repeated"
        );
    }
}
