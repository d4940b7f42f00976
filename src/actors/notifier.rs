//! `Notifier`: turns domain events into e-mail through the [`Mailer`] port.
//!
//! Embedded mode writes each message as an `.eml` file (lettre's file transport) under
//! `mail.dir`; configured with `mail.transport = "smtp"` it sends through an SMTP server.
//! Which events mail whom: `user.created` (welcome), `registration.created`, `order.confirmed`,
//! `order.cancelled` and `order.expired` (to the order's owner).
//!
//! Each message is recorded in `notifications` (pending, then sent or failed) for the person's
//! `GET /api/v1/notifications`.
//!
//! Each event mails once: the event id is recorded in `processed_events` after the send, and an
//! event found there is skipped, so a redelivery (Kafka rewinding a group, a relay retry, a new
//! relay leader publishing again what a killed one had sent) sends nothing. On PostgreSQL, where
//! several nodes' consumers share the table, check, send and record run under a transaction-level
//! advisory lock on the event id: during a consumer-group rebalance the partition's old owner can
//! still be sending a batch that its new owner fetches again, and the lock makes the second wait
//! and then find the first's record instead of sending too. What remains is a node dying between
//! the send and the record: the event is sent again (at least once, never lost).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use chrono::Utc;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    actors::consumer::ConsumerMsg,
    config::MailConfig,
    domain::{DomainEvent, NotificationStatus, Payload},
    error::{Cause, Report},
    store::{
        Committer, WriteOp,
        committer::CommitError,
        entities::{events, notifications, processed_events, users},
        notifications::NotificationChange,
    },
};

/// The consumer name under which sent e-mails are recorded in `processed_events`.
const CONSUMER: &str = "notifier";

/// Why a message was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("writing the .eml file")]
    File(#[from] lettre::transport::file::Error),
    #[error("sending over SMTP")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Why an event's e-mail was not sent (the batch is offered again).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("reading the database")]
    Db(#[from] DbErr),
    #[error("recording the sent e-mail")]
    Record(#[source] CommitError),
    #[error("bad recipient {0}")]
    Recipient(String, #[source] lettre::address::AddressError),
    #[error("building the message")]
    Build(#[from] lettre::error::Error),
    #[error("handing the message over")]
    Send(#[from] MailError),
}

/// Somewhere e-mail can be sent.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, message: Message) -> Result<(), MailError>;
}

/// Writes `<id>.eml` files into a directory.
pub struct FileMailer {
    transport: AsyncFileTransport<Tokio1Executor>,
}

impl FileMailer {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        // Each e-mail names its recipient and their order: owner only, like the rest of `var/`.
        crate::secrets::private_dir(&dir)?;
        Ok(Self { transport: AsyncFileTransport::new(dir) })
    }
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, message: Message) -> Result<(), MailError> {
        self.transport.send(message).await.map(|_| ()).map_err(MailError::from)
    }
}

/// Sends through an SMTP server (lettre's pooled async transport).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    pub fn new(c: &MailConfig) -> anyhow::Result<Self> {
        type Smtp = AsyncSmtpTransport<Tokio1Executor>;
        let mut builder = match c.smtp_tls.as_str() {
            "tls" => Smtp::relay(&c.smtp_host).context("mail.smtp_host")?,
            "starttls" => Smtp::starttls_relay(&c.smtp_host).context("mail.smtp_host")?,
            // Plain SMTP: a relay on loopback or a private network (Mailpit, a local MTA).
            _ => Smtp::builder_dangerous(&c.smtp_host),
        }
        .port(c.smtp_port)
        .timeout(Some(Duration::from_millis(c.smtp_timeout_ms)));
        if !c.smtp_username.is_empty() {
            builder =
                builder.credentials(Credentials::new(c.smtp_username.clone(), c.smtp_password.expose().to_string()));
        }
        Ok(Self { transport: builder.build() })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: Message) -> Result<(), MailError> {
        self.transport.send(message).await.map(|_| ()).map_err(MailError::from)
    }
}

/// The mailer `mail.transport` asks for.
pub fn mailer(c: &MailConfig) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match c.transport.as_str() {
        "smtp" => Arc::new(SmtpMailer::new(c)?),
        _ => Arc::new(FileMailer::new(c.dir.clone()).context("mail.dir")?),
    })
}

#[derive(Clone)]
pub struct NotifierArgs {
    pub db: DatabaseConnection,
    pub committer: Committer,
    pub mailer: Arc<dyn Mailer>,
    pub from: Mailbox,
}

#[derive(Clone)]
pub struct Notifier;

impl Actor for Notifier {
    type Msg = ConsumerMsg;
    type State = NotifierArgs;
    type Arguments = NotifierArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: NotifierArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ConsumerMsg::Deliver(events, reply) = msg;
        let mut result = Ok(());
        for event in &events {
            if let Err(e) = state.notify(event).await {
                tracing::warn!(event_id = %event.id, error = %Report(&e), "e-mail not sent");
                result = Err(Arc::new(e) as Cause);
                break;
            }
        }
        let _ = reply.send(result);
        Ok(())
    }
}

/// One e-mail: recipient, subject and plain-text body (an HTML part is derived from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub user_id: Uuid,
    pub to: String,
    pub name: String,
    pub subject: String,
    pub text: String,
}

impl NotifierArgs {
    async fn notify(&self, event: &DomainEvent) -> Result<(), NotifyError> {
        let Some(draft) = self.draft(event).await? else {
            return Ok(());
        };
        // On PostgreSQL: the lock, and the transaction that records the send (see the module doc).
        let lock = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let txn = self.db.begin().await?;
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    [format!("boxoffice.notify:{}", event.id).into()],
                ))
                .await?;
                Some(txn)
            }
            _ => None,
        };
        let key = (CONSUMER.to_string(), event.id);
        let done = match &lock {
            Some(txn) => processed_events::Entity::find_by_id(key).one(txn).await?,
            None => processed_events::Entity::find_by_id(key).one(&self.db).await?,
        };
        if done.is_some() {
            tracing::debug!(event_id = %event.id, "e-mail already sent for this event");
            metrics::counter!(crate::instruments::EMAILS, "result" => "duplicate").increment(1);
            return Ok(());
        }
        let to: Mailbox = format!("{} <{}>", draft.name.replace(['<', '>', '"'], ""), draft.to)
            .parse()
            .or_else(|_| draft.to.parse())
            .map_err(|e| NotifyError::Recipient(draft.to.clone(), e))?;
        let html = format!(
            "<!doctype html><html><body><h1>{}</h1>{}</body></html>",
            escape(&draft.subject),
            draft.text.lines().map(|l| format!("<p>{}</p>", escape(l))).collect::<String>()
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&draft.subject)
            .message_id(Some(format!("<{}@boxoffice>", event.id)))
            .multipart(MultiPart::alternative_plain_html(draft.text.clone(), html))?;
        // The person's record of it (`GET /api/v1/notifications`), pending until the send is done.
        let pending = NotificationChange::Pending(notifications::Model {
            id: event.id,
            user_id: draft.user_id,
            channel: "email".into(),
            subject: draft.subject.clone(),
            to_address: draft.to.clone(),
            status: NotificationStatus::Pending,
            error: None,
            created_at: Utc::now(),
            sent_at: None,
        });
        self.committer.commit(vec![WriteOp::Notification(pending)]).await.map_err(NotifyError::Record)?;
        let sent_at = Utc::now();
        let record_sent = NotificationChange::Sent { id: event.id, at: sent_at };
        let sent = processed_events::ActiveModel {
            consumer: Set(CONSUMER.to_string()),
            event_id: Set(event.id),
            processed_at: Set(sent_at),
        };
        // On PostgreSQL the record is written before the send and committed right after it, so
        // the gap in which a dying node has sent but not recorded is one COMMIT, not a place in
        // the committer's queue behind a rush of holds. A failed send rolls it back.
        if let Some(txn) = &lock {
            processed_events::Entity::insert(sent.clone()).exec(txn).await?;
            txn.execute_raw(record_sent.statement(DbBackend::Postgres)).await?;
        }
        if let Err(e) = self.mailer.send(message).await {
            metrics::counter!(crate::instruments::EMAILS, "result" => "failed").increment(1);
            drop(lock);
            let failed = NotificationChange::Failed { id: event.id, error: Report(&e).to_string() };
            if let Err(record) = self.committer.commit(vec![WriteOp::Notification(failed)]).await {
                tracing::warn!(event_id = %event.id, error = %Report(&record), "could not record a failed e-mail");
            }
            return Err(e.into());
        }
        metrics::counter!(crate::instruments::EMAILS, "result" => "sent").increment(1);
        match lock {
            Some(txn) => txn.commit().await.map_err(NotifyError::Db),
            None => self
                .committer
                .commit(vec![WriteOp::MarkProcessed(vec![sent]), WriteOp::Notification(record_sent)])
                .await
                .map_err(NotifyError::Record),
        }
    }

    /// The e-mail an event calls for, if any.
    pub async fn draft(&self, event: &DomainEvent) -> Result<Option<Draft>, NotifyError> {
        let (user_id, subject, text) = match &event.payload {
            Payload::UserCreated(u) => (
                u.user_id,
                "Welcome to Boxoffice".to_string(),
                "Your account is ready. Browse events and book your seats.".to_string(),
            ),
            Payload::RegistrationCreated(r) => {
                let name = self.event_name(r.event_id).await?;
                (
                    r.user_id,
                    format!("You are registered: {name}"),
                    format!("Your registration for {name} is confirmed."),
                )
            }
            Payload::OrderConfirmed(c) => {
                let o = &c.order;
                let name = self.event_name(o.event_id).await?;
                (
                    o.user_id,
                    format!("Your tickets for {name}"),
                    format!(
                        "Order {} is confirmed: {} seat(s), {} {}.\nTickets: {}",
                        o.order_id,
                        o.quantity,
                        money(o.amount_cents),
                        o.currency,
                        c.tickets.join(", ")
                    ),
                )
            }
            Payload::OrderCancelled(r) => {
                let name = self.event_name(r.order.event_id).await?;
                let refund = r.refund_cents.map(|c| format!(" A refund of {} is on its way.", money(c)));
                (
                    r.order.user_id,
                    format!("Order cancelled: {name}"),
                    format!("Your order was cancelled.{}", refund.unwrap_or_default()),
                )
            }
            Payload::OrderExpired(r) => {
                let name = self.event_name(r.order.event_id).await?;
                (
                    r.order.user_id,
                    format!("Your hold expired: {name}"),
                    "Your seats were held but not paid in time, so they were released.".to_string(),
                )
            }
            Payload::WaitlistOffered(w) => {
                let name = self.event_name(w.event_id).await?;
                let text = match w.expires_at {
                    Some(until) => format!(
                        "Seats came back and {} are held for you (order {}). Pay for them before {} \
                         (UTC) to keep them; after that they go to the next person on the list.",
                        w.quantity,
                        w.order_id,
                        until.format("%Y-%m-%d %H:%M")
                    ),
                    None => format!("A place came back and you are now registered (order {}).", w.order_id),
                };
                (w.user_id, format!("From the waiting list: seats for {name}"), text)
            }
            _ => return Ok(None),
        };
        let user = users::Entity::find_by_id(user_id).one(&self.db).await?;
        let Some(user) = user else {
            return Ok(None); // the account is gone: nobody to write to
        };
        let name =
            [user.first_name.clone(), user.last_name.clone()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { user.username.clone() } else { name };
        Ok(Some(Draft { user_id, to: user.email, name, subject, text }))
    }

    async fn event_name(&self, id: Uuid) -> Result<String, NotifyError> {
        let event = events::Entity::find_by_id(id).one(&self.db).await?;
        Ok(event.map(|e| e.name).unwrap_or_else(|| "your event".into()))
    }
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
