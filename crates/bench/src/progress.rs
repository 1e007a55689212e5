//! Progress bars on stderr while a workload runs, so stdout stays clean for the table or
//! the JSON lines.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Whether workloads draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// Draw bars on stderr when stderr is a terminal. The default.
    #[default]
    Auto,
    /// Draw nothing (`--json`, `--quiet`, tests).
    Hidden,
}

impl Progress {
    /// [`Hidden`](Self::Hidden) when `quiet`, else [`Auto`](Self::Auto).
    pub fn quiet_if(quiet: bool) -> Self {
        if quiet {
            Self::Hidden
        } else {
            Self::Auto
        }
    }

    /// A bar counting up to `len` (items), labelled `label`.
    pub(crate) fn bar(self, label: &str, len: u64) -> Bar {
        self.make(
            label,
            len,
            "{prefix:>24} {wide_bar} {human_pos}/{human_len} {rate} eta {eta} {msg}",
        )
    }

    /// A bar over `total` of wall-clock time, counted in seconds.
    pub(crate) fn timer(self, label: &str, total: Duration) -> Bar {
        self.make(
            label,
            total.as_secs().max(1),
            "{prefix:>24} {wide_bar} {pos}/{len} s {msg}",
        )
    }

    fn make(self, label: &str, len: u64, template: &str) -> Bar {
        let visible = self == Self::Auto && std::io::stderr().is_terminal();
        let bar = if visible {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    },
                ));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_prefix(label.to_owned());
        Bar(bar)
    }
}

/// One running bar (clones share it); [`finish`](Self::finish) clears it from the terminal.
#[derive(Debug, Clone)]
pub(crate) struct Bar(ProgressBar);

impl Bar {
    /// Advance by `n`.
    pub(crate) fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Move to `pos`.
    pub(crate) fn set(&self, pos: u64) {
        self.0.set_position(pos);
    }

    /// Show `msg` after the bar.
    pub(crate) fn message(&self, msg: String) {
        self.0.set_message(msg);
    }

    /// Remove the bar.
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}
