//! Webhooks for integrators: subscriptions ([`api`], made by
//! [`workflows::subscribe`]), an intake that turns
//! events read from Kafka into deliveries ([`intake`]), and a dispatcher
//! that signs and sends them ([`dispatch`]) through the SSRF [`guard`].

pub mod api;
pub mod dispatch;
pub mod domain;
mod entity;
pub mod intake;
pub mod mcp;
pub mod signature;
pub mod store;
pub mod views;
pub mod workflows;

pub use api::WebhooksApi;
