//! The local mailer: each message becomes an `.eml` file under `<data dir>/outbox/`, readable
//! by any mail client, and a log line says where it went (never what it says: it may hold a
//! code). What `latchkey-local` uses when no SES identity is configured; tests read codes from
//! these files as a person would read them from their inbox.
use crate::adapters::fs::{create_private_file, private_dir};
use crate::adapters::mime::render;
use crate::ports::mailer::{Email, MailError, Mailer};
use crate::ports::random::RandomExt as _;
use crate::ports::{Clock, Random};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Outbox {
    dir: PathBuf,
    from: String,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl Outbox {
    /// An outbox in `dir`, sending as `from`. The folder is made (owner-only) with the first
    /// message, so a process that never sends mail never writes to the disk.
    pub fn new(
        dir: &Path,
        from: &str,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            dir: dir.to_owned(),
            from: from.to_owned(),
            clock,
            random,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The messages in the outbox, oldest first (file names start with the time).
    pub fn messages(&self) -> std::io::Result<Vec<PathBuf>> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        Ok(files)
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let now = self.clock.now();
        let bytes = render(&self.from, email, now.into())?;
        let id = self.random.hex_id(8);
        let name = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z-{id}.eml",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.nanosecond()
        );
        let path = self.dir.join(&name);
        private_dir(&self.dir)
            .and_then(|()| create_private_file(&path, &bytes))
            .map_err(|e| MailError::Unavailable(format!("outbox write failed: {e}")))?;
        tracing::info!(outbox = %path.display(), "email written to the local outbox");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ports::clock::ManualClock;
    use crate::ports::random::OsRandom;
    use time::macros::datetime;

    #[tokio::test]
    async fn writes_one_private_eml_per_message_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(datetime!(2026-11-29 12:00 UTC)));
        let outbox = Outbox::new(
            &dir.path().join("outbox"),
            "Latchkey <no-reply@localhost>",
            clock.clone(),
            Arc::new(OsRandom),
        )
        .unwrap();
        assert!(
            !outbox.dir().exists(),
            "nothing is written before the first message"
        );
        assert!(outbox.messages().unwrap().is_empty());
        let email = Email {
            to: "jane@example.com".into(),
            subject: "first".into(),
            text: "one".into(),
            html: "<p>one</p>".into(),
            urgent: false,
        };
        outbox.send(&email).await.unwrap();
        clock.advance(time::Duration::seconds(1));
        outbox
            .send(&Email {
                subject: "second".into(),
                ..email
            })
            .await
            .unwrap();
        let files = outbox.messages().unwrap();
        assert_eq!(files.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(outbox.dir())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let first = std::fs::read_to_string(&files[0]).unwrap();
        assert!(first.contains("Subject: first"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

/// An outbox in memory, so that tests and
/// benches that do not care about mail need no folder, and tests that do can read what was
/// sent. [`crate::wiring`] never picks it: a deployment has the outbox folder or SES.
#[derive(Default)]
pub struct MemoryOutbox {
    sent: std::sync::Mutex<Vec<Email>>,
}

impl MemoryOutbox {
    /// Everything sent so far, oldest first.
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Mailer for MemoryOutbox {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        // Refuses what the real mailers refuse (a recipient that is not an address), so the
        // port's contract holds here too.
        crate::adapters::mime::render(
            "Latchkey <no-reply@localhost>",
            email,
            std::time::UNIX_EPOCH,
        )?;
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| MailError::Unavailable("memory outbox poisoned".into()))?;
        sent.push(email.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}
