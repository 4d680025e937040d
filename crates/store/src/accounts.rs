//! Accounts and API tokens. Passwords arrive already hashed (argon2id, by `app`); token
//! secrets arrive hashed too: neither is ever stored in the clear.

use crate::Store;
use crate::cells::Cells;
use crate::db::Arg;
use crate::error::StoreError;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: Option<String>,
    /// Space-separated role names.
    pub roles: String,
    /// `Patient/ID`, `RelatedPerson/ID`, `Practitioner/ID`...
    pub fhir_ref: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub token_hash: String,
    pub user_id: Option<String>,
    pub name: String,
    pub scopes: String,
    pub patient_id: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

const USER_COLS: &str = "id, username, password_hash, roles, fhir_ref, disabled, created_at";
const TOKEN_COLS: &str =
    "id, token_hash, user_id, name, scopes, patient_id, expires_at, revoked_at, created_at";

fn user<R: Cells + ?Sized>(r: &R) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.text(0)?,
        username: r.text(1)?,
        password_hash: r.maybe_text(2)?,
        roles: r.text(3)?,
        fhir_ref: r.maybe_text(4)?,
        disabled: r.flag(5)?,
        created_at: r.int(6)?,
    })
}

fn token<R: Cells + ?Sized>(r: &R) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: r.text(0)?,
        token_hash: r.text(1)?,
        user_id: r.maybe_text(2)?,
        name: r.text(3)?,
        scopes: r.text(4)?,
        patient_id: r.maybe_text(5)?,
        expires_at: r.maybe_int(6)?,
        revoked_at: r.maybe_int(7)?,
        created_at: r.int(8)?,
    })
}

impl Store {
    pub async fn insert_user(&self, u: &UserRow) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO users (id, username, password_hash, roles, fhir_ref, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING",
        )
        .bind(u.id.clone())
        .bind(u.username.clone())
        .bind(u.password_hash.clone())
        .bind(u.roles.clone())
        .bind(u.fhir_ref.clone())
        .bind(i64::from(u.disabled))
        .bind(u.created_at)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(StoreError::PreconditionFailed(format!(
                "the user name '{}' is taken",
                u.username
            )));
        }
        Ok(())
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE username = $1"
        )))
        .bind(username.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(user).transpose()
    }

    /// A user by id (each request with a user's token reads one: a hot read).
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let args = [Arg::Text(id.to_string())];
        Ok(self
            .fetch(&sql, &args, |r: &dyn Cells| user(r))
            .await?
            .pop())
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users ORDER BY username"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(user).collect()
    }

    /// Disables (or enables) a user; false if there is no such user.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
                .bind(i64::from(disabled))
                .bind(username.to_string())
                .execute(&self.writer)
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// Sets (or clears) a user's TOTP secret; false if there is no such user.
    pub async fn set_totp_secret(
        &self,
        username: &str,
        secret: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_last_step = NULL WHERE username = $2",
        )
        .bind(secret.map(str::to_string))
        .bind(username.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }

    /// Claims a TOTP time step for a user: true only if it is later than every step accepted
    /// before, so that a code is accepted once (two sign-ins racing with one code: one wins).
    pub async fn claim_totp_step(&self, username: &str, step: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE username = $2 \
             AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(username.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }

    /// The language a user chose for the app, if they chose one.
    pub async fn user_language(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT language FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .and_then(|r| r.get::<Option<String>, _>(0)))
    }

    pub async fn set_user_language(&self, id: &str, language: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
            .bind(language.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The time zone a user chose, if they chose one.
    pub async fn user_time_zone(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT time_zone FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .and_then(|r| r.get::<Option<String>, _>(0)))
    }

    /// Sets (or with None clears) the time zone a user chose.
    pub async fn set_user_time_zone(&self, id: &str, zone: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET time_zone = $1 WHERE id = $2")
            .bind(zone.map(str::to_string))
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A user's TOTP secret, if they set one up.
    pub async fn totp_secret(&self, username: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT totp_secret FROM users WHERE username = $1")
                .bind(username.to_string())
                .fetch_optional(&self.reader)
                .await?
                .and_then(|r| r.get::<Option<String>, _>(0)),
        )
    }

    pub async fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
                .bind(hash.to_string())
                .bind(username.to_string())
                .execute(&self.writer)
                .await?
                .rows_affected()
                == 1,
        )
    }

    pub async fn insert_token(&self, t: &TokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, user_id, name, scopes, patient_id, expires_at, revoked_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(t.id.clone())
        .bind(t.token_hash.clone())
        .bind(t.user_id.clone())
        .bind(t.name.clone())
        .bind(t.scopes.clone())
        .bind(t.patient_id.clone())
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .bind(t.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A token by its secret's hash (each API request reads one: a hot read).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1");
        let args = [Arg::Text(hash.to_string())];
        Ok(self
            .fetch(&sql, &args, |r: &dyn Cells| token(r))
            .await?
            .pop())
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLS} FROM api_tokens ORDER BY created_at, id"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(token).collect()
    }

    /// Revokes a token by its id; false if there was no live token with that id.
    pub async fn revoke_token(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }
}

/// A break-glass opening of one patient's chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRow {
    pub id: String,
    pub user_id: String,
    pub patient_id: String,
    pub reason: String,
    pub started_at: i64,
    pub until: i64,
}

impl crate::write::Tx {
    /// Records a break-glass opening (with its audit row, in the same transaction).
    pub async fn insert_break_glass(&mut self, b: &BreakGlassRow) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO break_glass (id, user_id, patient_id, reason, started_at, until) VALUES ($1, $2, $3, $4, $5, $6)",
                &crate::db::args![&b.id, &b.user_id, &b.patient_id, &b.reason, b.started_at, b.until],
            )
            .await?;
        Ok(())
    }
}

impl Store {
    /// A user's break-glass openings still running at `now` (Unix milliseconds).
    pub async fn active_break_glass(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<BreakGlassRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, patient_id, reason, started_at, until FROM break_glass WHERE user_id = $1 AND until > $2",
        )
        .bind(user_id.to_string())
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| BreakGlassRow {
                id: r.get(0),
                user_id: r.get(1),
                patient_id: r.get(2),
                reason: r.get(3),
                started_at: r.get(4),
                until: r.get(5),
            })
            .collect())
    }
}

/// A stored sign-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: Option<String>,
    pub data: String,
    pub expiry_date: i64,
}

impl Store {
    pub async fn save_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, data, expiry_date) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data, expiry_date = excluded.expiry_date",
        )
        .bind(s.id.clone())
        .bind(s.user_id.clone())
        .bind(s.data.clone())
        .bind(s.expiry_date)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Creates a session; false when the id is taken already.
    pub async fn create_session(&self, s: &SessionRow) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO sessions (id, user_id, data, expiry_date) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(s.id.clone())
        .bind(s.user_id.clone())
        .bind(s.data.clone())
        .bind(s.expiry_date)
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }

    /// How many sign-in sessions are stored.
    pub async fn session_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM sessions")
            .fetch_one(&self.reader)
            .await?
            .get(0))
    }

    pub async fn load_session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT id, user_id, data, expiry_date FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| SessionRow {
            id: r.get(0),
            user_id: r.get(1),
            data: r.get(2),
            expiry_date: r.get(3),
        }))
    }

    pub async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends every session of a user except `keep`; returns how many ended.
    pub async fn end_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                .bind(user_id.to_string())
                .bind(keep.unwrap_or("").to_string())
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    pub async fn record_login_attempt(
        &self,
        at: i64,
        username: &str,
        address: &str,
        ok: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_attempts (at, username, address, ok) VALUES ($1, $2, $3, $4)",
        )
        .bind(at)
        .bind(username.to_string())
        .bind(address.to_string())
        .bind(i64::from(ok))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records an attempt of `kind` (`speakup-claim`, `speakup-raise`) from an address, for
    /// throttling what needs no sign-in.
    pub async fn record_attempt(
        &self,
        at: i64,
        kind: &str,
        address: &str,
        ok: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO attempts (at, kind, address, ok) VALUES ($1, $2, $3, $4)")
            .bind(at)
            .bind(kind.to_string())
            .bind(address.to_string())
            .bind(i64::from(ok))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// How many attempts of `kind` from this address since `since` (only the failed ones
    /// when `failed_only`).
    pub async fn attempts_since(
        &self,
        kind: &str,
        address: &str,
        since: i64,
        failed_only: bool,
    ) -> Result<i64, StoreError> {
        let cond = if failed_only { " AND ok = 0" } else { "" };
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM attempts WHERE kind = $1 AND address = $2 AND at >= $3{cond}"
        )))
        .bind(kind.to_string())
        .bind(address.to_string())
        .bind(since)
        .fetch_one(&self.reader)
        .await?
        .get(0))
    }

    /// The sign-in attempts that bear on one more: failures for the account, from the
    /// address, and for the account from the address since `since`, and whether the account
    /// was signed in to from this address since `known_since`.
    pub async fn login_history(
        &self,
        username: &str,
        address: &str,
        since: i64,
        known_since: i64,
    ) -> Result<coproduce_core::access::session::LoginHistory, StoreError> {
        // Each count by its own index (user, address): failures for the account, from the
        // address, for both, and successes for both within `known_since`.
        let counts = [
            ("username = $1 AND ok = 0", true, false, since),
            ("address = $1 AND ok = 0", false, true, since),
            (
                "username = $1 AND address = $2 AND ok = 0",
                true,
                true,
                since,
            ),
            (
                "username = $1 AND address = $2 AND ok = 1",
                true,
                true,
                known_since,
            ),
        ];
        let mut n = [0i64; 4];
        for (slot, (cond, by_user, by_address, at)) in n.iter_mut().zip(counts) {
            let at_mark = 1 + usize::from(by_user) + usize::from(by_address);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM login_attempts WHERE {cond} AND at >= ${at_mark}"
            )));
            if by_user {
                q = q.bind(username.to_string());
            }
            if by_address {
                q = q.bind(address.to_string());
            }
            *slot = q.bind(at).fetch_one(&self.reader).await?.get(0);
        }
        Ok(coproduce_core::access::session::LoginHistory {
            failed_for_account: n[0],
            failed_from_address: n[1],
            failed_for_account_from_address: n[2],
            known_address: n[3] > 0,
        })
    }
}
