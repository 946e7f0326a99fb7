//! An adapter under test together with what must outlive it or come after it: the temporary
//! folder its files are in, and the clean-up of what the test made outside the process (a
//! DynamoDB table and its backups, a KMS key, a secret, an SES identity).
//!
//! The clean-up runs when the value is dropped, so also when the test fails: a panic unwinds
//! through the test's locals. It runs on a thread of its own with a runtime of its own, so it
//! works whatever runtime the test had (current-thread or not) and even while that runtime is
//! unwinding, and it must make its own SDK clients (connections pooled by the test's clients
//! belong to the test's runtime).
use std::future::Future;
use std::pin::Pin;
use tempfile::TempDir;

type CleanupFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<(), String>>>> + Send>;

/// Runs an async clean-up when dropped. A clean-up that fails fails the test (unless the test
/// is failing already, when it is only printed).
pub struct OnDrop {
    what: String,
    // In a mutex only so that fixtures holding one stay `Sync`; nothing else locks it.
    cleanup: std::sync::Mutex<Option<CleanupFn>>,
}

impl OnDrop {
    /// `cleanup` is called on a fresh thread, its future driven by a fresh runtime.
    pub fn new<F, Fut>(what: impl Into<String>, cleanup: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        Self {
            what: what.into(),
            cleanup: std::sync::Mutex::new(Some(Box::new(move || Box::pin(cleanup())))),
        }
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        let taken = match self.cleanup.get_mut() {
            Ok(c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(cleanup) = taken else {
            return;
        };
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(cleanup())
        })
        .join()
        .unwrap_or_else(|_| Err("the clean-up panicked".into()));
        if let Err(e) = outcome {
            if std::thread::panicking() {
                eprintln!("clean-up of {} failed too: {e}", self.what);
            } else {
                panic!("clean-up of {} failed: {e}", self.what);
            }
        }
    }
}

/// An adapter under test, and what it needs kept or removed after it. Fields drop in order: the
/// adapter first, then its folder, then the clean-up.
pub struct Fresh<T> {
    adapter: T,
    _dir: Option<TempDir>,
    _cleanup: Option<OnDrop>,
}

impl<T: Clone> Fresh<T> {
    /// An adapter that needs nothing kept (SQLite in memory).
    pub fn new(adapter: T) -> Self {
        Self {
            adapter,
            _dir: None,
            _cleanup: None,
        }
    }

    /// An adapter whose files are in `dir`, removed after it.
    pub fn in_dir(adapter: T, dir: TempDir) -> Self {
        Self {
            adapter,
            _dir: Some(dir),
            _cleanup: None,
        }
    }

    /// An adapter whose remote resources `cleanup` removes after it.
    pub fn cleaned_by(adapter: T, cleanup: OnDrop) -> Self {
        Self {
            adapter,
            _dir: None,
            _cleanup: Some(cleanup),
        }
    }

    /// A handle on the adapter (a clone of the `Arc`).
    pub fn adapter(&self) -> T {
        self.adapter.clone()
    }
}
