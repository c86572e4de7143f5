//! Where the portal keeps its registrations: who each visitor registered as, under which
//! applicant id. The handlers see only [`Registrations`]; [`SqliteRegistrations`] keeps them in
//! the data directory beside the book, `registry_redis::RedisRegistrations` on Redis for many
//! nodes.
//!
//! # Guarantee
//! An applicant id is handed out once, ever: after a restart on the same data, and across
//! every node sharing one Redis, no two registrations share an id (and so no applicant sees or
//! changes another's holds and bookings, which the book keys by applicant id). A national id
//! registers once.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use surgegate::{ApplicantId, VisitorId};

/// The most registrations the portal keeps.
pub const MAX_REGISTRATIONS: u64 = 4_000_000;

/// A registered applicant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub applicant: ApplicantId,
    pub name: String,
    pub national_id: String,
    pub phone: String,
}

/// What a registration asks to keep (the applicant id is the store's to give).
#[derive(Clone, Debug)]
pub struct NewRegistration {
    pub name: String,
    pub national_id: String,
    pub phone: String,
}

/// Why a registration was not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Another visitor registered this national id.
    NationalIdTaken,
    /// [`MAX_REGISTRATIONS`] are kept.
    Full,
    /// The store could not be read or written: nothing was kept.
    Store(String),
}

/// A boxed future of the store (the trait is used as `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store of registrations, keyed by the waiting room's visitor identity.
pub trait Registrations: Send + Sync + 'static {
    /// The registration of `visitor`, if any.
    fn get(&self, visitor: VisitorId) -> StoreFuture<'_, Result<Option<Registration>, String>>;

    /// Registers `visitor` under a new applicant id, or gives its existing registration back
    /// unchanged (a second submit of the form registers nothing new).
    fn register(
        &self,
        visitor: VisitorId,
        new: NewRegistration,
    ) -> StoreFuture<'_, Result<Registration, RegisterError>>;

    /// How many registrations are kept.
    fn count(&self) -> StoreFuture<'_, Result<u64, String>>;
}

/// Registrations in an SQLite file (`registrations.sqlite` in the data directory). Applicant
/// ids are an `AUTOINCREMENT` key: SQLite never hands one out twice, not even after a delete.
/// National ids are a `UNIQUE` column, so the database itself refuses a second one (the
/// handlers give them in one canonical form: see `register::canonical_national_id`). Every
/// registration is committed (synchronous, write-ahead log) before it is answered; one
/// connection behind a lock serialises them.
pub struct SqliteRegistrations {
    db: Arc<Mutex<Connection>>,
}

impl SqliteRegistrations {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join("registrations.sqlite");
        let fail = |e: rusqlite::Error| format!("registrations in {}: {e}", path.display());
        let db = Connection::open(&path).map_err(fail)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS applicants (
                 applicant INTEGER PRIMARY KEY AUTOINCREMENT,
                 visitor INTEGER NOT NULL UNIQUE,
                 national_id TEXT NOT NULL UNIQUE,
                 name TEXT NOT NULL,
                 phone TEXT NOT NULL
             );",
        )
        .map_err(fail)?;
        Ok(Self {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Runs `f` on the connection off the async threads (SQLite blocks on the disk).
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> StoreFuture<'_, Result<T, String>> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&mut db.lock()))
                .await
                .map_err(|e| format!("the registrations store stopped: {e}"))
        })
    }
}

/// The registration of `visitor` in `db`.
fn select(db: &Connection, visitor: VisitorId) -> rusqlite::Result<Option<Registration>> {
    db.query_row(
        "SELECT applicant, name, national_id, phone FROM applicants WHERE visitor = ?1",
        // Visitor ids are any u64; SQLite keeps i64: the same 64 bits.
        params![visitor.0 as i64],
        |row| {
            Ok(Registration {
                applicant: ApplicantId(row.get::<_, i64>(0)? as u64),
                name: row.get(1)?,
                national_id: row.get(2)?,
                phone: row.get(3)?,
            })
        },
    )
    .optional()
}

fn insert(
    db: &mut Connection,
    visitor: VisitorId,
    new: &NewRegistration,
) -> Result<Registration, RegisterError> {
    let store = |e: rusqlite::Error| RegisterError::Store(e.to_string());
    let tx = db.transaction().map_err(store)?;
    if let Some(found) = select(&tx, visitor).map_err(store)? {
        return Ok(found);
    }
    let inserted = tx.execute(
        "INSERT INTO applicants (visitor, national_id, name, phone) VALUES (?1, ?2, ?3, ?4)",
        params![visitor.0 as i64, new.national_id, new.name, new.phone],
    );
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            return Err(RegisterError::NationalIdTaken);
        }
        Err(e) => return Err(store(e)),
    }
    let applicant = ApplicantId(tx.last_insert_rowid() as u64);
    // Ids count up from 1 and rows are never deleted, so the new id is the number kept: over
    // the bound, the transaction is dropped (rolled back, the id's counter with it) instead
    // of counting every row before each insert.
    if applicant.0 > MAX_REGISTRATIONS {
        return Err(RegisterError::Full);
    }
    tx.commit().map_err(store)?;
    Ok(Registration {
        applicant,
        name: new.name.clone(),
        national_id: new.national_id.clone(),
        phone: new.phone.clone(),
    })
}

impl Registrations for SqliteRegistrations {
    fn get(&self, visitor: VisitorId) -> StoreFuture<'_, Result<Option<Registration>, String>> {
        let read = self.blocking(move |db| select(db, visitor).map_err(|e| e.to_string()));
        Box::pin(async move { read.await? })
    }

    fn register(
        &self,
        visitor: VisitorId,
        new: NewRegistration,
    ) -> StoreFuture<'_, Result<Registration, RegisterError>> {
        let write = self.blocking(move |db| insert(db, visitor, &new));
        Box::pin(async move { write.await.map_err(RegisterError::Store)? })
    }

    fn count(&self) -> StoreFuture<'_, Result<u64, String>> {
        let read = self.blocking(|db| {
            // The highest id is the count (ids from 1, no deletes): one step down the key.
            db.query_row(
                "SELECT COALESCE(MAX(applicant), 0) FROM applicants",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
        });
        Box::pin(async move { read.await? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> NewRegistration {
        NewRegistration {
            name: "Amal Haddad".into(),
            national_id: id.into(),
            phone: "+962791234567".into(),
        }
    }

    #[tokio::test]
    async fn ids_are_never_reused_across_a_reopen_and_national_ids_register_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = SqliteRegistrations::open(dir.path()).unwrap();
            let first = store
                .register(VisitorId(7), person("111111"))
                .await
                .unwrap();
            let again = store
                .register(VisitorId(7), person("222222"))
                .await
                .unwrap();
            assert_eq!(first, again, "a second submit registers nothing new");
            let taken = store.register(VisitorId(8), person("111111")).await;
            assert_eq!(taken, Err(RegisterError::NationalIdTaken));
            first
        };
        let store = SqliteRegistrations::open(dir.path()).unwrap();
        assert_eq!(store.get(VisitorId(7)).await.unwrap(), Some(first.clone()));
        let second = store
            .register(VisitorId(u64::MAX), person("333333"))
            .await
            .unwrap();
        assert_ne!(second.applicant, first.applicant);
        assert_eq!(store.get(VisitorId(u64::MAX)).await.unwrap(), Some(second));
        assert_eq!(store.count().await.unwrap(), 2);
    }
}
