//! Outgoing mail: SMTP through lettre when `WARDEN_SMTP_URL` is set, otherwise one `.eml` file
//! per message in `WARDEN_MAIL_DIR`.

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `<…@…>`, the same for every attempt at one message.
    pub message_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad address or message: {0}")]
    Message(String),
    #[error("delivery failed: {0}")]
    Delivery(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError>;
}

fn build(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Message(e.to_string()))?;
    Message::builder()
        .message_id(mail.message_id.clone())
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| MailError::Message(e.to_string()))
}

pub struct SmtpMailer {
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Delivery(e.to_string()))?
            .build();
        Ok(Self { from, transport })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, &mail)?;
        self.transport.send(message).await.map_err(|e| {
            // A permanent refusal (5xx: no such mailbox) will not change on a retry.
            if e.is_permanent() {
                MailError::Message(e.to_string())
            } else {
                MailError::Delivery(e.to_string())
            }
        })?;
        Ok(())
    }
}

pub struct FileOutbox {
    from: Mailbox,
    dir: PathBuf,
}

impl FileOutbox {
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self { from, dir }
    }
}

#[async_trait]
impl Mailer for FileOutbox {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, &mail)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Delivery(e.to_string()))?;
        let name = format!("{}.eml", Uuid::now_v7());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, message.formatted())
            .await
            .map_err(|e| MailError::Delivery(e.to_string()))?;
        // Renamed into place so a reader never sees half a message.
        tokio::fs::rename(&tmp, self.dir.join(name))
            .await
            .map_err(|e| MailError::Delivery(e.to_string()))?;
        Ok(())
    }
}
