//! Mutual TLS between nodes (`cluster.tls_cert`, `tls_key`, `tls_ca`): every node presents a
//! certificate signed by the cluster's CA and accepts only peers that do, on top of the cookie.
//!
//! ractor_cluster can run TLS itself, but its listener awaits each TLS handshake inline and
//! without a timeout, so one silent TCP client would stall every inbound connection (see
//! docs/design/cluster-research.md). So this module runs the cluster port's accept loop: each
//! handshake runs in a task of its own under [`HANDSHAKE`], a failed or stalled one is counted as a
//! refused session and dropped, and a finished one is handed to the `NodeServer` as an opened
//! connection. The `NodeServer`'s own listener then sits on an unused loopback port, and it too
//! demands TLS, so there is no plain way in.
//!
//! rustls has two crypto providers compiled in here (ractor_cluster's tokio-rustls brings
//! aws-lc-rs, others bring ring), so it cannot pick a process default: every config names ring.

use std::{net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context;
use ractor::ActorRef;
use ractor_cluster::{NetworkStream, NodeServerMessage};
use tokio::net::TcpListener;
use tokio_rustls::{
    TlsAcceptor, TlsConnector,
    rustls::{
        ClientConfig, RootCertStore, ServerConfig,
        crypto::{CryptoProvider, ring},
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};

use super::membership::HANDSHAKE;
use crate::config::ClusterConfig;

/// Both halves of mutual TLS, loaded from the configured PEM files.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn certificates(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {key} ({})", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{key} ({}) holds no certificate", path.display());
    Ok(certs)
}

impl Tls {
    /// `None` when TLS is not configured (plain TCP with the cookie).
    pub fn load(config: &ClusterConfig) -> anyhow::Result<Option<Self>> {
        if !config.tls() {
            return Ok(None);
        }
        let chain = certificates(&config.tls_cert, "cluster.tls_cert")?;
        let key = PrivateKeyDer::from_pem_file(&config.tls_key)
            .with_context(|| format!("reading cluster.tls_key ({})", config.tls_key.display()))?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(&config.tls_ca, "cluster.tls_ca")? {
            roots.add(ca).context("cluster.tls_ca: not a usable CA certificate")?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .context("cluster.tls_ca: cannot verify peers with it")?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .context("cluster.tls_cert and cluster.tls_key do not make a usable server identity")?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("cluster.tls_cert and cluster.tls_key do not make a usable client identity")?;
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        }))
    }
}

/// The name a peer's certificate must carry: the host of its `host:port` (an IP address or a DNS
/// name, matched against the certificate's subject alternative names).
pub fn server_name(address: &str) -> Option<ServerName<'static>> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// Accepts connections on the cluster port, runs each TLS handshake under [`HANDSHAKE`] in its
/// own task, and hands finished ones to the node server. Runs until the task is aborted.
pub async fn accept(listener: Arc<TcpListener>, acceptor: TlsAcceptor, node: ActorRef<NodeServerMessage>) {
    loop {
        let (stream, peer_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accepting a cluster connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, node) = (acceptor.clone(), node.clone());
        tokio::spawn(async move {
            let local_addr = stream.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            let _ = stream.set_nodelay(true);
            let refused = |why: &str| {
                metrics::counter!(crate::instruments::CLUSTER_REFUSED_SESSIONS).increment(1);
                tracing::warn!(%peer_addr, why, "a cluster connection was refused before its session");
            };
            match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let stream = Box::new(NetworkStream::TlsServer { peer_addr, local_addr, stream });
                    let _ = node.cast(NodeServerMessage::ConnectionOpened { stream, is_server: true });
                }
                Ok(Err(e)) => refused(&format!("TLS handshake failed: {e}")),
                Err(_) => refused("no TLS handshake in time"),
            }
        });
    }
}
