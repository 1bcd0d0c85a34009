//! Integration tests: each drives the HTTP surface of a running Errand with
//! its own fresh database (SQLite by default, PostgreSQL when
//! `ERRAND_TEST_DATABASE_URL` is set).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test panics on what it did not expect; that is its failure report"
)]

mod common;

mod agenda;
mod architecture;
mod attacks;
mod auth;
mod browser;
mod cli;
mod contract;
mod errors;
mod events;
mod isolation;
mod limits;
mod listing;
mod mcp;
mod mcp_apps;
mod mcp_events;
mod oauth;
mod oauth_common;
mod oidc;
mod reminders;
mod replicas;
mod revocation;
mod tasks;
mod webhooks;
