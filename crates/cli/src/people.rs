//! The `user`, `token` and `audit` commands.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use coproduce_app::Store;
use coproduce_app::accounts::{Accounts, NewToken, NewUser};
use coproduce_core::access::Role;
use coproduce_store::AuditVerdict;
use std::io::Read;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account.
    Add {
        #[arg(long)]
        username: String,
        /// A role (repeatable): patient, family, clinician, nurse, pharmacist,
        /// community-health-worker, social-worker, rapid-response, clinic-lead,
        /// quality-analyst, admin, partner.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The patient this account is (role patient).
        #[arg(long)]
        patient: Option<String>,
        /// The RelatedPerson this account is (role family).
        #[arg(long)]
        related_person: Option<String>,
        /// The Practitioner this account is (care-team roles).
        #[arg(long)]
        practitioner: Option<String>,
        /// The community organisation this account works for (role partner): it sees only
        /// the referrals addressed to that Organization.
        #[arg(long)]
        organization: Option<String>,
        /// Read the password from standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account (its tokens stop working at once).
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// Set a new password, read from standard input (ends the user's sessions).
    ResetPassword { username: String },
    /// Set up a TOTP second factor; prints the otpauth:// URL for the authenticator app.
    TotpEnable { username: String },
    /// Remove the TOTP second factor.
    TotpDisable { username: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue an API token; its secret is printed once.
    Issue {
        /// The user the token acts as (patient/ and user/ scopes).
        #[arg(long, conflicts_with = "system")]
        user: Option<String>,
        /// A token for an integration, with system/ scopes and no user behind it.
        #[arg(long)]
        system: bool,
        /// SMART scopes, space-separated: "patient/*.rs", "user/Observation.cruds", "system/*.rs".
        #[arg(long)]
        scope: String,
        /// The patient a patient/ token is bound to.
        #[arg(long)]
        patient: Option<String>,
        /// Lifetime such as 30d, 12h or 90m (default: no expiry for system tokens, 30d otherwise).
        #[arg(long)]
        expires: Option<String>,
        /// A name for the audit trail.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
    /// List tokens (never their secrets).
    List,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first row that was changed or removed.
    Verify,
}

fn read_password() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

/// `30d`, `12h`, `90m`.
pub fn parse_duration(s: &str) -> Result<time::Duration> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .with_context(|| format!("'{s}' is not a duration such as 30d, 12h or 90m"))?;
    Ok(match unit {
        "d" => time::Duration::days(n),
        "h" => time::Duration::hours(n),
        "m" => time::Duration::minutes(n),
        _ => bail!("'{s}' is not a duration such as 30d, 12h or 90m"),
    })
}

pub async fn user(accounts: &Accounts, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            username,
            roles,
            patient,
            related_person,
            practitioner,
            organization,
            password_stdin,
        } => {
            let roles = roles
                .iter()
                .flat_map(|r| r.split(','))
                .map(|r| Role::parse(r.trim()).with_context(|| format!("'{r}' is not a role")))
                .collect::<Result<Vec<_>>>()?;
            let links: Vec<String> = [patient, related_person, practitioner, organization]
                .into_iter()
                .flatten()
                .collect();
            if links.len() > 1 {
                bail!(
                    "give at most one of --patient, --related-person, --practitioner, --organization"
                );
            }
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let u = accounts
                .add_user(NewUser {
                    username,
                    roles,
                    fhir_ref: links.into_iter().next(),
                    password,
                })
                .await?;
            println!(
                "created user {} ({}){}",
                u.username,
                u.roles,
                u.fhir_ref.map(|r| format!(" as {r}")).unwrap_or_default()
            );
        }
        UserCommand::List => {
            for u in accounts.users().await? {
                println!(
                    "{:<20} {:<30} {:<32} {}",
                    u.username,
                    u.roles,
                    u.fhir_ref.unwrap_or_else(|| "-".into()),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UserCommand::Disable { username } => {
            accounts.set_disabled(&username, true).await?;
            println!("disabled {username}");
        }
        UserCommand::Enable { username } => {
            accounts.set_disabled(&username, false).await?;
            println!("enabled {username}");
        }
        UserCommand::ResetPassword { username } => {
            accounts
                .reset_password(&username, &read_password()?)
                .await?;
            println!("password changed for {username}; their sessions are ended");
        }
        UserCommand::TotpEnable { username } => {
            let url = accounts.enable_totp(&username).await?;
            println!("{url}");
            eprintln!(
                "give this to {username} only (it holds the secret): their authenticator app reads it"
            );
        }
        UserCommand::TotpDisable { username } => {
            accounts.disable_totp(&username).await?;
            println!("second factor removed for {username}");
        }
    }
    Ok(())
}

pub async fn token(accounts: &Accounts, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Issue {
            user,
            system,
            scope,
            patient,
            expires,
            name,
        } => {
            if !system && user.is_none() {
                bail!("give --user NAME, or --system for an integration");
            }
            let expires_in = match expires {
                Some(e) => Some(parse_duration(&e)?),
                None if system => None,
                None => Some(time::Duration::days(30)),
            };
            let name = name
                .or_else(|| user.clone())
                .unwrap_or_else(|| "integration".into());
            let (id, secret) = accounts
                .issue_token(NewToken {
                    username: user,
                    name,
                    scopes: scope,
                    patient,
                    expires_in,
                })
                .await?;
            println!("token {id}");
            println!("{secret}");
            eprintln!("the secret above is shown once; send it as: Authorization: Bearer <secret>");
        }
        TokenCommand::Revoke { id } => {
            accounts.revoke_token(&id).await?;
            println!("revoked {id}");
        }
        TokenCommand::List => {
            for t in accounts.tokens().await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!(
                    "{} {:<20} {:<28} {} {}",
                    t.id,
                    t.name,
                    t.scopes,
                    t.patient_id
                        .map(|p| format!("Patient/{p}"))
                        .unwrap_or_default(),
                    state
                );
            }
        }
    }
    Ok(())
}

/// Returns false when the chain is broken.
pub async fn audit(store: &Store, cmd: AuditCommand) -> Result<bool> {
    match cmd {
        AuditCommand::Verify => match store.verify_audit().await? {
            AuditVerdict::Intact(n) => {
                println!("the audit trail is intact: {n} rows");
                Ok(true)
            }
            AuditVerdict::Broken { seq, reason } => {
                println!("the audit trail is broken at row {seq}: {reason}");
                Ok(false)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), time::Duration::days(30));
        assert_eq!(parse_duration("90m").unwrap(), time::Duration::minutes(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }
}
