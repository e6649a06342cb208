//! The mail outbox (docs/adr/0018): what to mail is decided by the log, and a reactor delivers
//! it — after the request has answered, again after a crash, and again while the mail server is
//! down, until it takes the message.
//!
//! Nothing secret waits on the way: a reset link or an emailed code is derived from a nonce in
//! its event under a key derived from the master key, both when the request records it and when
//! the outbox mails it; only its hash is stored. `mail_deliveries` holds who claimed, sent or gave
//! up on which message, never its text. Each message has a stable `Message-ID`, so a receiving
//! server can drop the copy a retry sends after a lost acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{Account, AccountEvent, Notice};
use warden_aggregates::shared::{AccountId, Clock, TokenHash};
use warden_projections::{ProjectionError, Reactor, StoredEvent};

use super::directory::Directory;
use super::personal::Personal;
use crate::adapters::keys::KeyRing;
use crate::adapters::mail::{MailError, Mailer, OutgoingMail};
use crate::adapters::sealing::MasterKey;
use crate::adapters::store::EventStore;
use crate::adapters::tokens::{self, RESET_PREFIX};

pub const RESET_TOKEN_TTL_MINUTES: i64 = 30;
pub const EMAIL_CODE_MINUTES: i64 = 10;
/// How long a process may take to hand one message to the mail server before another process
/// may try it.
const CLAIM_SECONDS: i64 = 30;

/// The link token of a reset request, from the nonce its event carries.
pub fn reset_token(master: &MasterKey, account_id: AccountId, nonce: &str) -> SecretString {
    let body = master.derived_secret("reset-link", &format!("{account_id}:{nonce}"));
    SecretString::from(format!("{RESET_PREFIX}{body}"))
}

/// An emailed code (six digits) for `scope`, from the nonce its event carries.
pub fn email_code(master: &MasterKey, scope: &str, nonce: &str) -> SecretString {
    let n = master.derived_number("email-code", &format!("{scope}:{nonce}"), 1_000_000);
    SecretString::from(format!("{n:06}"))
}

/// What an emailed code is bound to: the account, and the challenge (or enrollment).
pub fn email_code_scope(account_id: AccountId, challenge_hash: Option<&str>) -> String {
    // The spelling of the first codes: changing it would void codes mailed before.
    format!("{account_id}:{}", challenge_hash.unwrap_or("enrolment"))
}

/// The reactor that turns mail-deciding events into delivered mail.
pub struct MailOutbox {
    pool: PgPool,
    store: EventStore,
    directory: Directory,
    mailer: Arc<dyn Mailer>,
    public_url: String,
    /// The domain part of every `Message-ID`.
    domain: String,
    /// Whether a link or code has run out before it could be sent.
    clock: Arc<dyn Clock>,
}

/// Why a message was not sent and will not be.
enum Skip {
    /// Mailed inline before the outbox existed, or not a mail at all.
    Nothing,
    Because(&'static str),
}

impl MailOutbox {
    pub fn new(
        pool: PgPool,
        keys: KeyRing,
        mailer: Arc<dyn Mailer>,
        public_url: String,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let store = EventStore::new(pool.clone());
        let directory = Directory::new(pool.clone(), keys, store.clone());
        let domain = reqwest::Url::parse(&public_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "warden".into());
        Self {
            pool,
            store,
            directory,
            mailer,
            public_url,
            domain,
            clock,
        }
    }

    fn master(&self) -> &MasterKey {
        self.directory.keys().master()
    }

    /// The subject and text `event` calls for, with the secret derived again.
    fn compose(
        &self,
        account_id: AccountId,
        event: &AccountEvent,
    ) -> Result<(String, String), Skip> {
        match event {
            AccountEvent::PasswordResetRequested {
                token_hash,
                expires_at,
                mail_nonce: Some(nonce),
                ..
            } => {
                self.still_valid(*expires_at)?;
                let token = reset_token(self.master(), account_id, nonce);
                matches(token_hash, &token)?;
                Ok(("Reset your Warden password".into(), self.reset_text(&token)))
            }
            AccountEvent::EmailCodeSent {
                challenge_hash,
                code_hash,
                expires_at,
                mail_nonce: Some(nonce),
                ..
            } => {
                self.still_valid(*expires_at)?;
                let scope = email_code_scope(account_id, challenge_hash.as_ref().map(|h| &*h.0));
                let code = email_code(self.master(), &scope, nonce);
                if self.master().code_hash(&scope, code.expose_secret()) != *code_hash {
                    return Err(Skip::Because("the code no longer derives from its nonce"));
                }
                Ok(("Your Warden code".into(), code_text(&code)))
            }
            _ => Err(Skip::Nothing),
        }
    }

    /// The security notice `event` calls for, if the owner wants it.
    async fn notice(
        &self,
        account_id: AccountId,
        event: &AccountEvent,
        stored: &StoredEvent,
    ) -> Result<(String, String), Result<Skip, String>> {
        let notice = Notice::for_event(event).ok_or(Ok(Skip::Nothing))?;
        let account = self
            .store
            .load::<Account>(&account_id.to_string())
            .await
            .map_err(|e| Err(e.to_string()))?
            .0;
        if !account.wants(notice) {
            return Err(Ok(Skip::Nothing));
        }
        let key = self
            .directory
            .key(account_id)
            .await
            .map_err(|e| Err(e.to_string()))?;
        let agent = stored.metadata["user_agent"]
            .as_str()
            .map(|sealed| Personal::open_text(key.as_ref(), sealed.to_owned()));
        let agent = match &agent {
            Some(Personal::Open(text)) => Some(shown_agent(text)),
            _ => None,
        };
        Ok(notice_text(event, agent.as_deref()))
    }

    /// Claims `message_id` for this process: `false` once another process has finished it.
    /// While another holds a live claim, waits (at most one claim's length) rather than skip a
    /// message whose sender might die before sending it.
    async fn claimed(
        &self,
        message_id: &str,
        account_id: AccountId,
        kind: &str,
    ) -> Result<bool, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(CLAIM_SECONDS as u64 + 1);
        loop {
            match claim(&self.pool, message_id, account_id, kind).await {
                Ok(Some(claimed_here)) => return Ok(claimed_here),
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(None) => return Err("another process holds the message".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// A link or code that ran out while the mail server was away is not sent: it would not work.
    fn still_valid(&self, expires_at: DateTime<Utc>) -> Result<(), Skip> {
        if self.clock.now() < expires_at {
            Ok(())
        } else {
            Err(Skip::Because("it ran out before it could be sent"))
        }
    }

    fn reset_text(&self, token: &SecretString) -> String {
        let link = format!(
            "{}/reset-password?token={}",
            self.public_url.trim_end_matches('/'),
            token.expose_secret()
        );
        format!(
            "Someone asked to reset the password of this account.\r\n\r\n\
             To choose a new password, open this link within {RESET_TOKEN_TTL_MINUTES} minutes:\r\n\
             {link}\r\n\r\n\
             If it was not you, ignore this message; your password stays as it is.\r\n"
        )
    }

    async fn deliver(&self, message_id: &str, mail: OutgoingMail) -> Result<(), String> {
        let sent = self.mailer.send(mail).await;
        match sent.map_err(|e| match e {
            MailError::Message(reason) => MailError::Message(without_addresses(&reason)),
            MailError::Delivery(reason) => MailError::Delivery(without_addresses(&reason)),
        }) {
            Ok(()) => {
                finish(&self.pool, message_id, "sent").await?;
                tracing::info!(message_id, "mail sent");
                Ok(())
            }
            Err(MailError::Message(reason)) => {
                // The address or message itself is refused: trying again changes nothing.
                tracing::warn!(message_id, %reason, "mail refused; not retried");
                finish(&self.pool, message_id, "refused").await
            }
            Err(MailError::Delivery(reason)) => {
                release(&self.pool, message_id, &reason).await?;
                Err(format!("mail server unavailable: {reason}"))
            }
        }
    }
}

/// A mail server's answer without the addresses it may quote, for the log and the table.
fn without_addresses(reason: &str) -> String {
    reason
        .split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches(stored: &TokenHash, token: &SecretString) -> Result<(), Skip> {
    if tokens::hash(token.expose_secret()) == *stored {
        Ok(())
    } else {
        Err(Skip::Because("the link no longer derives from its nonce"))
    }
}

/// A user agent as a notice quotes it: a client chose it, so it is cut short and only printable.
fn shown_agent(agent: &str) -> String {
    agent
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect()
}

/// The subject and text of a security notice. `agent`: the browser or program it came from.
fn notice_text(event: &AccountEvent, agent: Option<&str>) -> (String, String) {
    let from = agent.map_or(String::new(), |a| format!(" (from \"{a}\")"));
    let not_you = "If it was not you, change your password at once and log out of all devices \
                   in your security settings.";
    let (subject, what) = match event {
        AccountEvent::SessionStarted { started_at, .. } => (
            "New sign-in to your Warden account",
            format!(
                "Your account was signed in from a device it had not been used from before{from}, \
                 at {} UTC.",
                started_at.format("%Y-%m-%d %H:%M")
            ),
        ),
        AccountEvent::PasswordChanged { .. } => (
            "Your Warden password was changed",
            format!("The password of your account was changed{from}."),
        ),
        AccountEvent::TotpDisabled { .. } | AccountEvent::EmailMfaDisabled { .. } => (
            "A second factor was turned off",
            format!("A second factor of your account was turned off{from}."),
        ),
        AccountEvent::MfaReset { .. } => (
            "Your second factors were removed by support",
            "Support removed the second factors of your account, as someone asked them to."
                .to_string(),
        ),
        AccountEvent::RecoveryCodesReplaced { .. } => (
            "New recovery codes were made",
            format!(
                "New recovery codes were made for your account{from}; the old ones no longer work."
            ),
        ),
        AccountEvent::ApiTokenCreated { name, .. } => (
            "A new API access token",
            format!("An API access token named \"{name}\" was created for your account{from}."),
        ),
        AccountEvent::LockedOut { until, .. } => (
            "Your Warden account is locked",
            format!(
                "Too many wrong passwords were tried for your account, so it is locked{}. \
                 If you cannot wait, use \"Ask for access\" on the sign-in page: support decides.",
                until.map_or(" until support unlocks it".to_string(), |u| format!(
                    " until {} UTC",
                    u.format("%Y-%m-%d %H:%M")
                ))
            ),
        ),
        _ => ("", String::new()),
    };
    let advice = match event {
        AccountEvent::LockedOut { .. } => {
            "If it was not you, someone knows your address and is guessing: \
                                           choose a long password when you are back in."
        }
        _ => not_you,
    };
    (subject.to_string(), format!("{what}\r\n\r\n{advice}\r\n"))
}

fn code_text(code: &SecretString) -> String {
    format!(
        "Your Warden code is:\r\n\r\n{}\r\n\r\nIt works once, within {EMAIL_CODE_MINUTES} minutes. \
         If you did not ask for it, someone may know your password: change it.\r\n",
        code.expose_secret()
    )
}

/// Whether this process may send `message_id` now: nobody sent it or gave up on it, and nobody
/// else holds a live claim. `Some(true)` when claimed here, `Some(false)` when already finished,
/// `None` while another process holds it.
///
/// A claim lives until it runs out or until its holder has no connection left on the server: a
/// process killed while sending has closed them all, so its message is taken over at once. A
/// holder without a name (a tool's connection) is waited out.
async fn claim(
    pool: &PgPool,
    message_id: &str,
    account_id: AccountId,
    kind: &str,
) -> Result<Option<bool>, sqlx::Error> {
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO mail_deliveries
             (message_id, account_id, kind, claimed_until, claimed_by, attempts)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4),
                 current_setting('application_name'), 1)
         ON CONFLICT (message_id) DO UPDATE
         SET claimed_until = EXCLUDED.claimed_until, claimed_by = EXCLUDED.claimed_by,
             attempts = mail_deliveries.attempts + 1
         WHERE mail_deliveries.finished_at IS NULL
           AND (mail_deliveries.claimed_until IS NULL
                OR mail_deliveries.claimed_until < now()
                OR (mail_deliveries.claimed_by <> ''
                    AND NOT EXISTS (SELECT 1 FROM pg_stat_activity
                                    WHERE application_name = mail_deliveries.claimed_by)))
         RETURNING true",
    )
    .bind(message_id)
    .bind(account_id.0)
    .bind(kind)
    .bind(CLAIM_SECONDS as f64)
    .fetch_optional(pool)
    .await?;
    if claimed.is_some() {
        return Ok(Some(true));
    }
    let finished: Option<bool> = sqlx::query_scalar(
        "SELECT finished_at IS NOT NULL FROM mail_deliveries WHERE message_id = $1",
    )
    .bind(message_id)
    .fetch_optional(pool)
    .await?;
    Ok(match finished {
        Some(true) => Some(false),
        _ => None,
    })
}

async fn finish(pool: &PgPool, message_id: &str, outcome: &str) -> Result<(), String> {
    sqlx::query(
        "UPDATE mail_deliveries SET finished_at = now(), outcome = $2, claimed_until = NULL
         WHERE message_id = $1",
    )
    .bind(message_id)
    .bind(outcome)
    .execute(pool)
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn release(pool: &PgPool, message_id: &str, reason: &str) -> Result<(), String> {
    sqlx::query(
        "UPDATE mail_deliveries SET claimed_until = NULL, last_error = $2 WHERE message_id = $1",
    )
    .bind(message_id)
    .bind(reason)
    .execute(pool)
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[async_trait]
impl Reactor for MailOutbox {
    fn name(&self) -> &'static str {
        "mail_outbox"
    }

    fn event_types(&self) -> &'static [&'static str] {
        const TYPES: [&str; 10] = {
            let mut types = [""; 10];
            types[0] = AccountEvent::PASSWORD_RESET_REQUESTED;
            types[1] = AccountEvent::EMAIL_CODE_SENT;
            let mut i = 0;
            while i < Notice::EVENT_TYPES.len() {
                types[i + 2] = Notice::EVENT_TYPES[i];
                i += 1;
            }
            types
        };
        &TYPES
    }

    /// A request never waits for its mail: the mail server's speed (or absence) must not show in
    /// an answer.
    fn awaited(&self) -> bool {
        false
    }

    async fn react(&self, event: &StoredEvent) -> Result<(), ProjectionError> {
        let failed = |reason: String| ProjectionError::Reaction {
            cursor: event.cursor,
            reason,
        };
        let account_id = Uuid::parse_str(&event.aggregate_id)
            .map(AccountId)
            .map_err(|e| failed(e.to_string()))?;
        let decided =
            AccountEvent::deserialize(&*event.payload).map_err(|e| failed(e.to_string()))?;
        let message_id = format!(
            "<{}.{}@{}>",
            event.aggregate_id, event.sequence, self.domain
        );
        let composed = match self.compose(account_id, &decided) {
            Err(Skip::Nothing) => self.notice(account_id, &decided, event).await,
            other => other.map_err(Ok),
        };
        let (subject, body) = match composed {
            Ok(mail) => mail,
            Err(Ok(Skip::Nothing)) => return Ok(()),
            Err(Ok(Skip::Because(reason))) => {
                tracing::warn!(account = %account_id, reason, "mail not sent");
                // Tried before (the mail server was away): the record says why it stopped.
                return finish(&self.pool, &message_id, &format!("not sent: {reason}"))
                    .await
                    .map_err(failed);
            }
            Err(Err(error)) => return Err(failed(error)),
        };
        if !self
            .claimed(&message_id, account_id, &event.event_type)
            .await
            .map_err(failed)?
        {
            return Ok(());
        }
        let to = match self.directory.email_of(account_id).await {
            Ok(Personal::Open(to)) => to,
            Ok(_) => {
                // Erased since: nobody to write to.
                return finish(&self.pool, &message_id, "no address")
                    .await
                    .map_err(failed);
            }
            Err(e) => {
                let _ = release(&self.pool, &message_id, &e.to_string()).await;
                return Err(failed(e.to_string()));
            }
        };
        let mail = OutgoingMail {
            to,
            subject,
            body,
            message_id: Some(message_id.clone()),
        };
        self.deliver(&message_id, mail).await.map_err(failed)
    }
}
