//! The HTTP/1.1 server loop: what `axum::serve` does, plus the two limits it cannot set.
//!
//! - **Header timeout.** A client must send its request head within `http.header_timeout_ms`
//!   (hyper's `header_read_timeout`, which needs a timer that `axum::serve` never gives it), then
//!   the connection is closed. Without it, a slow-headers client kept a connection (and a task) open
//!   forever; 200 of them were enough to fill a small server's descriptors. The same limit is the
//!   idle time allowed between two requests on a kept-alive connection.
//! - **Bounded drain.** On shutdown the listener closes, every connection is asked to finish its
//!   current request, and whatever is still open when `drain` runs out (an SSE stream, a
//!   WebSocket, a client that never reads) is dropped, so shutdown ends in bounded time.
//!
//! - **Connection cap.** At most `http.max_connections` connections are served (each open stream
//!   holds one). Past it a connection is still accepted, so that its client hears at once why
//!   (not a hang in the listen backlog): on the next [`RESERVED_CONNECTIONS`] only the routes an
//!   operator needs during a flood are served ([`is_reserved`]: health, readiness, metrics, the
//!   cluster and audit views) and every other request is answered 503 `overloaded` with
//!   `Retry-After`; past those, the connection gets a bare 503 and is closed before it costs a
//!   task. Before, 20,050 open streams took every file descriptor and `/healthz` stopped answering.
//!
//! Connections are HTTP/1.1 with upgrades (WebSockets), as before; the peer address is available
//! to handlers as `ConnectInfo<SocketAddr>`.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::ConnectInfo,
    http::{HeaderValue, Request, header},
    response::{IntoResponse, Response},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower::ServiceExt;

/// Connections kept, past `http.max_connections`, for the routes an operator needs ([`is_reserved`]).
pub const RESERVED_CONNECTIONS: usize = 64;

/// What a connection past every cap is told before it is closed.
const BARE_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 92\r\n\r\n\
{\"error\":{\"code\":\"overloaded\",\"message\":\"this server has all the connections it can take\"}}\n";

/// Marks the requests of a connection over `http.max_connections`: only reserved routes serve.
#[derive(Debug, Clone, Copy)]
pub struct OverCap;

/// The routes still served on a connection over the cap: what an operator needs to see and act
/// during a flood (the other admin routes wait like every request).
pub fn is_reserved(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
        || path.starts_with("/api/v1/cluster")
        || path.starts_with("/api/v1/audit-logs")
}

/// Answers a request on a connection over the cap, unless its route is reserved (a middleware).
pub async fn refuse_over_cap(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.extensions().get::<OverCap>().is_none() || is_reserved(req.uri().path()) {
        return next.run(req).await;
    }
    crate::instruments::refused(crate::instruments::refusal::OVERLOADED);
    let mut response = super::Error::Overloaded.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most `drain`; at most
/// `max_connections` connections at once (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    drain: Duration,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Finished connections are reaped as we go, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, or a connection reset before accept: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let now_open = open.load(Ordering::Relaxed);
        if now_open >= max_connections + RESERVED_CONNECTIONS {
            // A fresh socket's send buffer is empty: this never blocks, and the answer is whole
            // or (a peer already gone) nothing.
            let _ = stream.try_write(BARE_503);
            crate::instruments::refused(crate::instruments::refusal::OVERLOADED);
            continue;
        }
        let over_cap = now_open >= max_connections;
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            if over_cap {
                req.extensions_mut().insert(OverCap);
            }
            req
        });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
        let mut stop = stop_rx.clone();
        let counted = OpenConnection::new(&open);
        connections.spawn(async move {
            let _counted = counted;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "connections still open at the drain limit: closing them");
        connections.abort_all();
    }
}

/// One open connection, counted while it lives.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
