//! The connection to etcd: endpoints, TLS and authentication, shared by the agent and the
//! operator commands. Every call is bounded by a timeout: the client's balanced channel waits
//! for a reachable endpoint rather than failing, and an agent must never wait on the store
//! forever.

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// How long one request to the store may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the store is and how to prove who we are.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) the server's certificate must chain to.
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for servers that ask for one.
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
    /// etcd user.
    pub user: Option<String>,
    /// Its password (read from a file or the environment, never from the command line).
    pub password: Option<String>,
}

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The options cannot work (a certificate that cannot be read, a user without password).
    #[error("{0}")]
    Options(String),
    /// The store answered with an error, or the connection failed (in short: the client's
    /// own text of a transport failure is a page of debug output).
    #[error("etcd: {0}")]
    Etcd(String),
    /// The store did not answer in time.
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
}

impl StoreOptions {
    /// Connect (lazily: the first request finds out whether the store is reachable).
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            // HTTP/2 pings notice a dead peer even while no request is outstanding.
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if self.cacert.is_some() || self.cert.is_some() {
            options = options.with_tls(self.tls()?);
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => options = options.with_user(user, password),
            (Some(user), None) => {
                return Err(StoreError::Options(format!(
                    "user {user} needs a password (--password-file or ZT_ETCD_PASSWORD)"
                )));
            }
            _ => {}
        }
        bounded(Client::connect(&self.endpoints, Some(options))).await
    }

    fn tls(&self) -> Result<TlsOptions, StoreError> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).map_err(|e| {
                StoreError::Options(format!("cannot read the {what} {}: {e}", p.display()))
            })
        };
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.cacert {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "client certificate")?,
                    read(key, "client key")?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(StoreError::Options(
                    "--cert and --key go together".to_owned(),
                ));
            }
        }
        Ok(tls)
    }

    /// The endpoints' addresses, resolved now (names included), for the agent's own rule.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for e in &self.endpoints {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e);
            let authority = rest.split('/').next().unwrap_or(rest);
            if let Ok(addrs) = authority.to_socket_addrs() {
                out.extend(addrs);
            }
        }
        out
    }
}

impl From<etcd_client::Error> for StoreError {
    fn from(e: etcd_client::Error) -> Self {
        StoreError::Etcd(describe(&e))
    }
}

/// An etcd client error in one short line: the gRPC status and message, and the innermost
/// cause (`unavailable: tcp connect error: Connection refused (os error 111)`).
pub fn describe(e: &etcd_client::Error) -> String {
    let mut innermost: Option<&dyn std::error::Error> = None;
    let mut next = match e {
        etcd_client::Error::GRpcStatus(status) => std::error::Error::source(status),
        other => std::error::Error::source(other),
    };
    while let Some(cause) = next {
        innermost = Some(cause);
        next = cause.source();
    }
    let head = match e {
        etcd_client::Error::GRpcStatus(status) => {
            let code = format!("{:?}", status.code()).to_lowercase();
            if status.message().is_empty() {
                code
            } else {
                format!("{code}: {}", status.message())
            }
        }
        other => other.to_string(),
    };
    match innermost {
        Some(cause) if !head.contains(&cause.to_string()) => format!("{head}: {cause}"),
        _ => head,
    }
}

/// `call`, failing with [`StoreError::Timeout`] after [`REQUEST_TIMEOUT`].
pub async fn bounded<T>(
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(StoreError::Timeout(REQUEST_TIMEOUT)),
    }
}
