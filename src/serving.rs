//! `errand serve`: one process serving the API, the workers or both, from
//! its settings (`config::ServeSettings`) to a clean stop. `main` only parses
//! the command line and calls [`serve`].

use std::{net::SocketAddr, time::Duration};

use poem::listener::{Listener, TcpAcceptor, TcpListener};

use crate::{App, BackgroundSettings, StartError, config::ServeSettings, server};

/// How long background jobs get to finish their step after the server stopped.
const BACKGROUND_STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the server failed")]
    Server(#[source] std::io::Error),
}

async fn bind(address: SocketAddr) -> Result<TcpAcceptor, ServeError> {
    TcpListener::bind(address)
        .into_acceptor()
        .await
        .map_err(|source| ServeError::Listen { address, source })
}

/// Serves until SIGTERM or SIGINT. Readiness fails at once, the listener
/// closes after the drain delay, in-flight requests then get the shutdown
/// grace, and the background work finishes its step last, so that the relay
/// publishes what the last requests wrote.
pub async fn serve(settings: ServeSettings) -> Result<(), ServeError> {
    // Listeners first: a port in use fails before anything is started.
    let acceptor = bind(settings.listen).await?;
    let metrics_acceptor = match settings.metrics_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let mut app = App::start(&settings.database, settings.public_url, &settings.auth).await?;
    app.webhooks = settings.webhooks;
    app.mail = settings.mail;
    app.mcp = settings.mcp;
    app.http = settings.http;
    app.http.metrics_on_main = metrics_acceptor.is_none();
    tracing::info!(public_url = %app.public_url, role = ?settings.role, "errand ready");
    let background = app
        .start_background(&BackgroundSettings {
            kafka: settings.kafka,
            workers: settings.role.runs_workers(),
        })
        .await?;
    let (draining, drain_delay, grace) = (
        app.draining.clone(),
        settings.drain_delay,
        settings.shutdown_grace,
    );
    let (stopped, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        server::shutdown_signal().await;
        draining.start();
        tokio::time::sleep(drain_delay).await;
        let _ = stopped.send(true);
    };
    let metrics_server = metrics_acceptor.map(|acceptor| {
        let endpoint = app.metrics_endpoint();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            server::serve(
                acceptor,
                endpoint,
                async move {
                    let _ = stopping.wait_for(|stopped| *stopped).await;
                },
                grace,
            )
            .await
        })
    });
    let served = if settings.role.serves_api() {
        server::serve(acceptor, app.endpoint()?, shutdown, grace).await
    } else {
        server::serve(acceptor, app.worker_endpoint(), shutdown, grace).await
    };
    // Requests have finished: let the relay publish what they wrote.
    background.shutdown(BACKGROUND_STOP_GRACE).await;
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    served.map_err(ServeError::Server)
}
