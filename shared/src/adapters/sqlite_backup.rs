//! Backups of the embedded store: SQLite's online backup API copies the live database, page
//! by page under a read transaction, into `<data dir>/backups/<stem>-<UTC timestamp>.db`
//! (mode 0600, in a 0700 folder). A drill restores a copy into
//! `<data dir>/backups/scratch/<name>.db`, opens it read-only, runs `PRAGMA integrity_check`
//! and reads every item. There is no point-in-time recovery to check.
use crate::adapters::fs::{create_private_file, private_dir};
use crate::adapters::sqlite::{COLUMNS, finish, read_item};
use crate::ports::backup::{BackupError, BackupRef, BackupTarget, Pitr, Scratch, Snapshot};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SqliteBackups {
    db: PathBuf,
    dir: PathBuf,
    stem: String,
}

impl SqliteBackups {
    /// Copies of the database at `db`, kept in `dir` (usually `<data dir>/backups`).
    pub fn new(db: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        let db = db.into();
        let stem = db
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("latchkey")
            .to_owned();
        Self {
            db,
            dir: dir.into(),
            stem,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn scratch_dir(&self) -> PathBuf {
        self.dir.join("scratch")
    }

    fn scratch_path(&self, name: &str) -> Result<PathBuf, BackupError> {
        if !safe_name(name) {
            return Err(BackupError::Refused(format!("bad scratch name {name}")));
        }
        Ok(self.scratch_dir().join(format!("{name}.db")))
    }
}

/// Names become file names: no separators, no dot-dot.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn sqlite_error(e: rusqlite::Error) -> BackupError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            BackupError::Unavailable(format!("sqlite: {e}"))
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            BackupError::Corrupt(format!("sqlite: {e}"))
        }
        other => BackupError::Refused(format!("sqlite: {other}")),
    }
}

/// The live database, opened without creating it; a busy writer is waited for.
fn open_live(db: &Path) -> Result<Connection, BackupError> {
    if !db.is_file() {
        return Err(BackupError::NotFound(db.display().to_string()));
    }
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_error)?;
    Ok(conn)
}

fn io_error(what: &Path, e: std::io::Error) -> BackupError {
    match e.kind() {
        std::io::ErrorKind::NotFound => BackupError::NotFound(what.display().to_string()),
        _ => BackupError::Refused(format!("{}: {e}", what.display())),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Unavailable(format!("sqlite task: {e}")))?
}

/// Copies the database `from` into a new private file `to`, as one self-contained file.
fn copy_database(from: &Connection, to: &Path) -> Result<(), BackupError> {
    create_private_file(to, b"").map_err(|e| io_error(to, e))?;
    let outcome = (|| {
        let mut dst = Connection::open(to).map_err(sqlite_error)?;
        {
            let backup = rusqlite::backup::Backup::new(from, &mut dst).map_err(sqlite_error)?;
            backup
                .run_to_completion(1024, std::time::Duration::ZERO, None)
                .map_err(sqlite_error)?;
        }
        // The copy inherits WAL mode; a rollback journal keeps it one file that opens read-only.
        dst.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sqlite_error)?;
        Ok(())
    })();
    if outcome.is_err() {
        let _ = std::fs::remove_file(to);
    }
    outcome
}

/// Reads every item of an open database into `digest`, in one read transaction.
fn read_items(conn: &mut Connection, digest: &mut Snapshot) -> Result<(), BackupError> {
    let tx = conn.transaction().map_err(sqlite_error)?;
    {
        let mut stmt = tx
            .prepare(&format!("SELECT {COLUMNS} FROM items"))
            .map_err(sqlite_error)?;
        let rows = stmt.query_map([], read_item).map_err(sqlite_error)?;
        for row in rows {
            let item = finish(row.map_err(sqlite_error)?)
                .map_err(|e| BackupError::Corrupt(e.to_string()))?;
            digest.add(&item);
        }
    }
    tx.commit().map_err(sqlite_error)
}

#[async_trait]
impl BackupTarget for SqliteBackups {
    fn source(&self) -> &str {
        &self.stem
    }

    async fn create_backup(&self, name: &str) -> Result<BackupRef, BackupError> {
        if !safe_name(name) {
            return Err(BackupError::Refused(format!("bad backup name {name}")));
        }
        let (db, dir) = (self.db.clone(), self.dir.clone());
        let name = name.to_owned();
        blocking(move || {
            private_dir(&dir).map_err(|e| io_error(&dir, e))?;
            let path = dir.join(format!("{name}.db"));
            copy_database(&open_live(&db)?, &path)?;
            Ok(BackupRef {
                id: path.display().to_string(),
                name,
            })
        })
        .await
    }

    async fn list_backups(&self) -> Result<Vec<BackupRef>, BackupError> {
        let (dir, prefix) = (self.dir.clone(), format!("{}-", self.stem));
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error(&dir, e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| io_error(&dir, e))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if let Some(stem) = name.strip_suffix(".db")
                    && stem.starts_with(&prefix)
                    && path.is_file()
                {
                    out.push(BackupRef {
                        id: path.display().to_string(),
                        name: stem.to_owned(),
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_backup(&self, backup: &BackupRef) -> Result<(), BackupError> {
        let path = self.dir.join(format!("{}.db", backup.name));
        if !safe_name(&backup.name) || path.display().to_string() != backup.id {
            return Err(BackupError::Refused(format!(
                "{} is not a copy in {}",
                backup.id,
                self.dir.display()
            )));
        }
        std::fs::remove_file(&path).map_err(|e| io_error(&path, e))
    }

    async fn pitr(&self) -> Result<Pitr, BackupError> {
        Ok(Pitr::NotApplicable)
    }

    async fn enable_pitr(&self) -> Result<(), BackupError> {
        Ok(())
    }

    async fn read_live(&self, digest: &mut Snapshot) -> Result<(), BackupError> {
        let db = self.db.clone();
        let mut snapshot = digest.clone();
        let snapshot = blocking(move || {
            read_items(&mut open_live(&db)?, &mut snapshot)?;
            Ok(snapshot)
        })
        .await?;
        *digest = snapshot;
        Ok(())
    }

    async fn restore_scratch(
        &self,
        backup: &BackupRef,
        scratch_name: &str,
    ) -> Result<Scratch, BackupError> {
        let to = self.scratch_path(scratch_name)?;
        let (from, scratch_dir) = (PathBuf::from(&backup.id), self.scratch_dir());
        blocking(move || {
            if !from.is_file() {
                return Err(BackupError::NotFound(from.display().to_string()));
            }
            private_dir(&scratch_dir).map_err(|e| io_error(&scratch_dir, e))?;
            let src = Connection::open_with_flags(&from, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(sqlite_error)?;
            copy_database(&src, &to)
        })
        .await?;
        Ok(Scratch {
            name: scratch_name.to_owned(),
        })
    }

    async fn read_scratch(
        &self,
        scratch: &Scratch,
        digest: &mut Snapshot,
    ) -> Result<(), BackupError> {
        let path = self.scratch_path(&scratch.name)?;
        let mut snapshot = digest.clone();
        let snapshot = blocking(move || {
            if !path.is_file() {
                return Err(BackupError::NotFound(path.display().to_string()));
            }
            let mut conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(sqlite_error)?;
            let verdict: Vec<String> = conn
                .prepare("PRAGMA integrity_check")
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, String>(0))?
                        .collect::<Result<_, _>>()
                })
                .map_err(|e| BackupError::Corrupt(format!("integrity check: {e}")))?;
            if verdict != ["ok"] {
                return Err(BackupError::Corrupt(format!(
                    "integrity check: {}",
                    verdict.join("; ")
                )));
            }
            read_items(&mut conn, &mut snapshot)?;
            Ok(snapshot)
        })
        .await?;
        *digest = snapshot;
        Ok(())
    }

    async fn drop_scratch(&self, scratch: &Scratch) -> Result<(), BackupError> {
        let path = self.scratch_path(&scratch.name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

impl SqliteBackups {
    /// Where a scratch copy of this name lives (tests alter it between the drill's halves).
    pub fn scratch_file(&self, scratch: &Scratch) -> Result<PathBuf, BackupError> {
        self.scratch_path(&scratch.name)
    }
}
