//! What the JSON log layer writes, captured per test.
//!
//! A process has one global subscriber, and several tests of one binary read the logs. So the
//! first [`capture`] installs [`latchkey::logging::subscriber`] (level `trace`) once, for the
//! whole process, and each capture collects only the lines written on its own thread: a
//! `#[tokio::test]` (current-thread runtime) runs its requests on the thread it started on, so
//! it reads its own requests' lines and no other test's. Global rather than a thread-scoped
//! default, because tracing caches callsite interest process-wide and a scoped subscriber can
//! miss events when other tests touch the same callsites at the same time. Threads without a
//! capture have every event disabled, so the other tests do not pay for formatting.
use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt as _;

thread_local! {
    static SINK: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

fn capturing() -> bool {
    SINK.with(|s| s.borrow().is_some())
}

/// Writes to the current thread's capture, if it has one.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|s| {
            if let Some(sink) = s.borrow().as_ref() {
                sink.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// While alive, the log lines written on this thread are kept. Not `Send`: it belongs to the
/// thread it captures.
pub struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    _thread: std::marker::PhantomData<*const ()>,
}

/// Starts capturing this thread's log lines (installing the process's subscriber if needed).
pub fn capture() -> Capture {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = latchkey::logging::subscriber("trace", || ThreadSink).with(
            tracing_subscriber::filter::dynamic_filter_fn(|_, _| capturing()),
        );
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in a test binary");
    });
    let buf = Arc::new(Mutex::new(Vec::new()));
    SINK.with(|s| *s.borrow_mut() = Some(buf.clone()));
    Capture {
        buf,
        _thread: std::marker::PhantomData,
    }
}

impl Capture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.buf.lock().unwrap().clone()).unwrap()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        SINK.with(|s| *s.borrow_mut() = None);
    }
}
