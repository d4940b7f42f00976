//! `PaymentActor`: talks to the payment provider behind the [`PaymentProvider`] port.
//!
//! Each charge runs in its own task so a slow provider answer holds up only its own order.
//! Charges are idempotent per order: the provider is asked with the order id as idempotency
//! key, and the built-in [`SimulatedProvider`] returns the first successful charge again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use uuid::Uuid;

use super::CallError;
use crate::error::Cause;

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
}

/// The simulated provider's memory was poisoned by a panic mid-charge.
#[derive(Debug, thiserror::Error)]
#[error("the simulated provider's charge record is poisoned")]
struct Poisoned;

fn poisoned<T>(_: T) -> ProviderError {
    ProviderError::Unavailable(Arc::new(Poisoned))
}

/// Test cards: `tok_ok` succeeds, `tok_declined` is declined, `tok_slow` succeeds after
/// `slow`; any other token is declined as an invalid card.
pub struct SimulatedProvider {
    slow: Duration,
    charged: Mutex<HashMap<Uuid, ChargeOutcome>>,
}

impl SimulatedProvider {
    pub fn new(slow: Duration) -> Self {
        Self { slow, charged: Mutex::new(HashMap::new()) }
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SimulatedProvider {
    async fn charge(&self, req: ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        if let Some(previous) = self.charged.lock().map_err(poisoned)?.get(&req.order_id) {
            return Ok(previous.clone());
        }
        let outcome = match req.card_token.as_str() {
            "tok_ok" => ChargeOutcome::Succeeded { provider_ref: format!("sim_{}", Uuid::new_v4().simple()) },
            "tok_slow" => {
                tokio::time::sleep(self.slow).await;
                ChargeOutcome::Succeeded { provider_ref: format!("sim_{}", Uuid::new_v4().simple()) }
            }
            "tok_declined" => ChargeOutcome::Declined { reason: "card_declined".into() },
            _ => ChargeOutcome::Declined { reason: "invalid_card".into() },
        };
        if matches!(outcome, ChargeOutcome::Succeeded { .. }) {
            self.charged.lock().map_err(poisoned)?.insert(req.order_id, outcome.clone());
        }
        Ok(outcome)
    }
}

pub enum PaymentMsg {
    Charge(ChargeRequest, RpcReplyPort<Result<ChargeOutcome, ProviderError>>),
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
        let PaymentMsg::Charge(req, reply) = msg;
        let provider = provider.clone();
        tokio::spawn(async move {
            let _ = reply.send(provider.charge(req).await);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(order_id: Uuid, token: &str) -> ChargeRequest {
        ChargeRequest { order_id, amount_cents: 100, currency: "EUR".into(), card_token: token.into() }
    }

    #[tokio::test]
    async fn test_cards_behave_as_documented() {
        let p = SimulatedProvider::new(Duration::from_millis(1));
        assert!(matches!(p.charge(req(Uuid::now_v7(), "tok_ok")).await, Ok(ChargeOutcome::Succeeded { .. })));
        assert!(matches!(p.charge(req(Uuid::now_v7(), "tok_slow")).await, Ok(ChargeOutcome::Succeeded { .. })));
        assert_eq!(
            p.charge(req(Uuid::now_v7(), "tok_declined")).await.unwrap(),
            ChargeOutcome::Declined { reason: "card_declined".into() }
        );
    }

    #[tokio::test]
    async fn a_second_charge_for_the_same_order_returns_the_first() {
        let p = SimulatedProvider::new(Duration::from_millis(1));
        let order = Uuid::now_v7();
        let first = p.charge(req(order, "tok_ok")).await.unwrap();
        let second = p.charge(req(order, "tok_ok")).await.unwrap();
        assert_eq!(first, second);
    }
}
