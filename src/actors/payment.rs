//! `PaymentActor`: talks to the payment provider behind the [`PaymentProvider`] port.
//!
//! Each charge runs in its own task so a slow provider answer holds up only its own order.
//! Charges are idempotent per order: the provider is asked with the order id as idempotency
//! key, and answers a repeated charge with the first one. A provider also answers what became of
//! a charge by that key ([`PaymentProvider::lookup`]): that is how a payment interrupted by a
//! crash is resolved (`actors::recovery`).
//!
//! The built-in [`SimulatedProvider`] keeps its charges in its own table (`simulated_charges`),
//! as a real provider keeps them on its side: they outlive a restart of Boxoffice.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait, sea_query::OnConflict};
use uuid::Uuid;

use super::CallError;
use crate::{error::Cause, store::entities::simulated_charges};

#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// Also the idempotency key towards the provider.
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub card_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded { provider_ref: String },
    Declined { reason: String },
}

/// Why a charge has no outcome (the saga records the payment as failed, `provider_unavailable`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be asked or did not answer; `Cause` says why.
    #[error("the payment provider is unavailable")]
    Unavailable(#[source] Cause),
    #[error("the payment actor could not be reached")]
    Unreachable(#[source] CallError),
}

/// A payment provider. Implementations must be idempotent per `order_id`.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    async fn charge(&self, req: ChargeRequest) -> Result<ChargeOutcome, ProviderError>;

    /// The charge taken for `order_id`, if any (a declined attempt leaves none).
    async fn lookup(&self, order_id: Uuid) -> Result<Option<ChargeOutcome>, ProviderError>;
}

fn provider_down(e: sea_orm::DbErr) -> ProviderError {
    ProviderError::Unavailable(Arc::new(e))
}

/// Test cards: `tok_ok` succeeds, `tok_declined` is declined, `tok_slow` is charged at once but
/// answered only after `slow` (a crash meanwhile leaves a charge that only [`lookup`] finds, as a
/// lost answer from a real provider would); any other token is declined as an invalid card.
///
/// [`lookup`]: PaymentProvider::lookup
pub struct SimulatedProvider {
    slow: Duration,
    /// Its own records (`simulated_charges`), in Boxoffice's database for want of a server of its own.
    db: DatabaseConnection,
}

impl SimulatedProvider {
    pub fn new(slow: Duration, db: DatabaseConnection) -> Self {
        Self { slow, db }
    }

    /// Takes the charge for `req` unless one was taken for its order already; answers the one kept.
    async fn take(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let row = simulated_charges::ActiveModel {
            order_id: Set(req.order_id),
            provider_ref: Set(format!("sim_{}", Uuid::new_v4().simple())),
            amount_cents: Set(req.amount_cents),
            currency: Set(req.currency.clone()),
            created_at: Set(Utc::now()),
        };
        simulated_charges::Entity::insert(row)
            .on_conflict(OnConflict::column(simulated_charges::Column::OrderId).do_nothing().to_owned())
            .exec_without_returning(&self.db)
            .await
            .map_err(provider_down)?;
        // Two charges for one order at once: both answer the one that was kept.
        self.lookup(req.order_id)
            .await?
            .ok_or_else(|| provider_down(sea_orm::DbErr::RecordNotFound("a simulated charge just written".into())))
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SimulatedProvider {
    async fn charge(&self, req: ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        if let Some(previous) = self.lookup(req.order_id).await? {
            return Ok(previous);
        }
        match req.card_token.as_str() {
            "tok_ok" => self.take(&req).await,
            "tok_slow" => {
                let charged = self.take(&req).await?;
                tokio::time::sleep(self.slow).await;
                Ok(charged)
            }
            "tok_declined" => Ok(ChargeOutcome::Declined { reason: "card_declined".into() }),
            _ => Ok(ChargeOutcome::Declined { reason: "invalid_card".into() }),
        }
    }

    async fn lookup(&self, order_id: Uuid) -> Result<Option<ChargeOutcome>, ProviderError> {
        let row = simulated_charges::Entity::find_by_id(order_id).one(&self.db).await.map_err(provider_down)?;
        Ok(row.map(|r| ChargeOutcome::Succeeded { provider_ref: r.provider_ref }))
    }
}

pub enum PaymentMsg {
    Charge(ChargeRequest, RpcReplyPort<Result<ChargeOutcome, ProviderError>>),
    /// What became of the charge for an order (see [`PaymentProvider::lookup`]).
    Lookup(Uuid, RpcReplyPort<Result<Option<ChargeOutcome>, ProviderError>>),
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for PaymentMsg {}

#[derive(Clone)]
pub struct PaymentActor;

impl Actor for PaymentActor {
    type Msg = PaymentMsg;
    type State = Arc<dyn PaymentProvider>;
    type Arguments = Arc<dyn PaymentProvider>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        provider: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(provider)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        provider: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let provider = provider.clone();
        match msg {
            PaymentMsg::Charge(req, reply) => {
                tokio::spawn(async move {
                    let _ = reply.send(provider.charge(req).await);
                });
            }
            PaymentMsg::Lookup(order_id, reply) => {
                tokio::spawn(async move {
                    let _ = reply.send(provider.lookup(order_id).await);
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(order_id: Uuid, token: &str) -> ChargeRequest {
        ChargeRequest { order_id, amount_cents: 100, currency: "EUR".into(), card_token: token.into() }
    }

    async fn provider() -> SimulatedProvider {
        let db = crate::store::connect("sqlite::memory:", 1).await.unwrap();
        crate::store::migrate(&db).await.unwrap();
        SimulatedProvider::new(Duration::from_millis(1), db)
    }

    #[tokio::test]
    async fn test_cards_behave_as_documented() {
        let p = provider().await;
        assert!(matches!(p.charge(req(Uuid::now_v7(), "tok_ok")).await, Ok(ChargeOutcome::Succeeded { .. })));
        assert!(matches!(p.charge(req(Uuid::now_v7(), "tok_slow")).await, Ok(ChargeOutcome::Succeeded { .. })));
        assert_eq!(
            p.charge(req(Uuid::now_v7(), "tok_declined")).await.unwrap(),
            ChargeOutcome::Declined { reason: "card_declined".into() }
        );
    }

    #[tokio::test]
    async fn a_second_charge_for_the_same_order_returns_the_first_and_lookup_finds_it() {
        let p = provider().await;
        let order = Uuid::now_v7();
        assert_eq!(p.lookup(order).await.unwrap(), None, "nothing charged yet");
        let first = p.charge(req(order, "tok_ok")).await.unwrap();
        let second = p.charge(req(order, "tok_ok")).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(p.lookup(order).await.unwrap(), Some(first));
        let declined = Uuid::now_v7();
        p.charge(req(declined, "tok_declined")).await.unwrap();
        assert_eq!(p.lookup(declined).await.unwrap(), None, "a declined card leaves no charge");
    }
}
