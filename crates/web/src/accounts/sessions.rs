//! Sign-in sessions: tower-sessions handles the cookie and the session id; the records live in
//! our database (through `app`), and our own rules in `core` (with the server's clock) decide
//! when a session has been idle too long or lasted too long.

use async_trait::async_trait;
use coproduce_app::SessionRow;
use coproduce_app::accounts::Accounts;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

/// Sessions stored in the coproduce database.
#[derive(Debug, Clone)]
pub struct DbSessions(pub Accounts);

fn row(r: &Record) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.id.to_string(),
        user_id: r
            .data
            .get("user_id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        data: serde_json::to_string(&r.data).map_err(|e| Error::Encode(e.to_string()))?,
        expiry_date: coproduce_core::unix_millis(r.expiry_date),
    })
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for DbSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A fresh id until it is one nobody holds.
        while !self
            .0
            .create_session(&row(record)?)
            .await
            .map_err(backend)?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.0.save_session(&row(record)?).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let Some(r) = self
            .0
            .load_session(&id.to_string())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_str(&r.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = coproduce_core::from_unix_millis(r.expiry_date);
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.0
            .delete_session(&id.to_string())
            .await
            .map_err(backend)
    }
}
