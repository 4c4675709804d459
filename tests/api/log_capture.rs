//! The test binary's one tracing subscriber: the production JSON subscriber at debug level,
//! writing into memory while at least one test captures. Tests run in parallel in one process,
//! so a capture sees every test's lines written meanwhile; each test looks only for its own
//! values (its secrets, its client id).

use guildgate::telemetry::{self, LogFormat};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// What the subscriber wrote while a capture was running.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// How many captures are running.
static CAPTURING: AtomicUsize = AtomicUsize::new(0);
/// Whether this module installed the process's subscriber.
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The subscriber's sink: appends to [`CAPTURED`] while capturing, discards otherwise.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if CAPTURING.load(Ordering::SeqCst) > 0 {
            CAPTURED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Self::Writer {
        Sink
    }
}

/// A running capture: the log written from its start until [`Capture::stop`].
pub struct Capture {
    from: usize,
    running: bool,
}

impl Capture {
    /// Installs the subscriber (once per process) and starts capturing.
    pub fn start() -> Self {
        assert!(
            *INSTALLED.get_or_init(|| telemetry::init(
                "debug",
                LogFormat::Json,
                telemetry::Colour::Off,
                Sink
            )),
            "this module installs the process's only subscriber"
        );
        // Counted before the offset is read: nothing written from here on is missed.
        CAPTURING.fetch_add(1, Ordering::SeqCst);
        let from = CAPTURED.lock().unwrap_or_else(|e| e.into_inner()).len();
        Self {
            from,
            running: true,
        }
    }

    /// Stops capturing and returns what was written since the start.
    pub fn stop(mut self) -> String {
        self.running = false;
        CAPTURING.fetch_sub(1, Ordering::SeqCst);
        let captured = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&captured[self.from..]).into_owned()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.running {
            CAPTURING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
