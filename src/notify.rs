//! E-mail after a run, to the addresses in the pipeline's `[notify]` table, when the run's
//! status is one it lists (by default only `failed`). The SMTP server and its credentials
//! come from the environment, never from a file in the repository:
//!
//! - `EARLYSTART_SMTP_URL`: `smtps://host:465` (TLS), `smtp://host:587?tls=required`
//!   (STARTTLS) or `smtp://host:25` (plain, for a relay on the same network);
//! - `EARLYSTART_SMTP_USER`, `EARLYSTART_SMTP_PASSWORD`: optional credentials;
//! - `EARLYSTART_SMTP_FROM`: the sender (default `earlystart@localhost`).
//!
//! A message that cannot be sent is logged; it never changes the run's outcome.

use anyhow::{Context as _, Result};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

/// An SMTP connection configured from the environment.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer of `EARLYSTART_SMTP_URL`, or `None` when it is not set.
    pub fn from_env() -> Result<Option<Self>> {
        let Ok(url) = std::env::var("EARLYSTART_SMTP_URL") else {
            return Ok(None);
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .with_context(|| format!("EARLYSTART_SMTP_URL {url:?} is not an SMTP URL"))?;
        if let (Ok(user), Ok(password)) = (
            std::env::var("EARLYSTART_SMTP_USER"),
            std::env::var("EARLYSTART_SMTP_PASSWORD"),
        ) {
            builder = builder.credentials(Credentials::new(user, password));
        }
        let from = std::env::var("EARLYSTART_SMTP_FROM")
            .unwrap_or_else(|_| "earlystart@localhost".into())
            .parse()
            .context("EARLYSTART_SMTP_FROM is not an address")?;
        Ok(Some(Self {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends one plain-text message to every address.
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<()> {
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            message = message.to(address
                .parse()
                .with_context(|| format!("{address:?} is not an e-mail address"))?);
        }
        let message = message
            .body(body.to_string())
            .context("cannot build the message")?;
        self.transport
            .send(message)
            .await
            .context("the SMTP server refused the message")?;
        Ok(())
    }
}

impl Mailer {
    /// Sends one message with a plain-text body and attached files
    /// (`(file name, MIME type, bytes)`).
    pub async fn send_with_attachments(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
        attachments: &[(String, String, Vec<u8>)],
    ) -> Result<()> {
        use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            message = message.to(address
                .parse()
                .with_context(|| format!("{address:?} is not an e-mail address"))?);
        }
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body.to_string()));
        for (name, mime, bytes) in attachments {
            let content_type =
                ContentType::parse(mime).with_context(|| format!("{mime:?} is not a MIME type"))?;
            parts =
                parts.singlepart(Attachment::new(name.clone()).body(bytes.clone(), content_type));
        }
        let message = message
            .multipart(parts)
            .context("cannot build the message")?;
        self.transport
            .send(message)
            .await
            .context("the SMTP server refused the message")?;
        Ok(())
    }
}

/// Tells the pipeline's addresses about a run whose status they asked for.
pub async fn after_run(
    pipeline: &crate::config::Pipeline,
    status: &str,
    subject: &str,
    body: &str,
) {
    if pipeline.notify_email.is_empty() || !pipeline.notify_on.iter().any(|s| s == status) {
        return;
    }
    let sent = match Mailer::from_env() {
        Ok(Some(m)) => m.send(&pipeline.notify_email, subject, body).await,
        Ok(None) => {
            tracing::warn!(
                "pipeline {} asks for e-mail but EARLYSTART_SMTP_URL is not set; not sent",
                pipeline.name
            );
            return;
        }
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => tracing::info!(to = ?pipeline.notify_email, status, "Run notification sent."),
        Err(e) => tracing::error!(error = format!("{e:#}"), "Run notification not sent."),
    }
}
