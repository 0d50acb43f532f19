//! Progress of long work on stderr: live spinners on a terminal, plain
//! timestamped lines elsewhere (CI logs). Never on stdout.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    quiet: bool,
    start: Instant,
}

impl Progress {
    /// Live output when stderr is a terminal (and not in CI, and no debug
    /// log is interleaved), plain otherwise.
    pub fn new(quiet: bool) -> Progress {
        let live = !quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && !super::log::enabled();
        Progress {
            live: live.then(MultiProgress::new),
            bars: Mutex::new(HashMap::new()),
            quiet,
            start: Instant::now(),
        }
    }

    fn bar(&self, key: &str) -> Option<ProgressBar> {
        let live = self.live.as_ref()?;
        let mut bars = self.bars.lock().expect("progress lock");
        let bar = bars.entry(key.to_string()).or_insert_with(|| {
            let b = live.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                    .expect("static template"),
            );
            b.set_prefix(key.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Some(bar.clone())
    }

    /// A step of `key`'s work.
    pub fn line(&self, key: &str, msg: &str) {
        if self.quiet {
            return;
        }
        match self.bar(key) {
            Some(b) => b.set_message(msg.to_string()),
            None => crate::say!(
                "[{:>6.1}s] {key}: {msg}",
                self.start.elapsed().as_secs_f64()
            ),
        }
    }

    /// `key` finished well.
    pub fn done(&self, key: &str, msg: &str) {
        if self.quiet {
            return;
        }
        match self.bar(key) {
            Some(b) => b.finish_with_message(format!("✓ {msg}")),
            None => crate::say!(
                "[{:>6.1}s] {key}: done: {msg}",
                self.start.elapsed().as_secs_f64()
            ),
        }
    }

    /// `key` failed (errors are shown even when quiet).
    pub fn failed(&self, key: &str, msg: &str) {
        match self.bar(key) {
            Some(b) => b.abandon_with_message(format!("✗ {msg}")),
            None => crate::say!(
                "[{:>6.1}s] {key}: FAILED: {msg}",
                self.start.elapsed().as_secs_f64()
            ),
        }
    }

    /// A message outside any bar.
    pub fn note(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.live {
            Some(live) => {
                let _ = live.println(msg);
            }
            None => crate::say!("{msg}"),
        }
    }
}
