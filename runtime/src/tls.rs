//! TLS for both network transports, on rustls with the ring provider (feature `tls`).
//!
//! Certificates and keys are read from PEM. A server presents its certificate chain and may
//! require client certificates (mutual TLS); a client trusts the CAs it is given (there are no
//! built-in roots: pass your CA, or a system bundle read from disk) and may present a
//! certificate of its own. Both sides negotiate ALPN: `h2` for gRPC, as gRPC requires, and
//! `rust-rpc` for the TCP transport, so that a client of one never talks to a server of the
//! other. A configuration that names its own ALPN protocols keeps them. For anything else
//! (other providers, ciphers, session resumption), build a rustls config yourself and pass it
//! to `from_config`.

// With neither transport there is nothing to use the configurations with.
#![cfg_attr(not(any(feature = "tcp", feature = "grpc")), allow(dead_code))]

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held nothing usable.
    #[error("{what}: {detail}")]
    Pem {
        /// Which input: "certificate chain", "private key", "CA certificates".
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// rustls refused the configuration (a key that does not match its certificate, say).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A server name that is neither a DNS name nor an IP address.
    #[error("{0:?} is not a valid server name")]
    ServerName(String),
}

/// ALPN protocol id of HTTP/2.
#[cfg(feature = "grpc")]
pub(crate) const H2: &[u8] = b"h2";

/// ALPN protocol id of rust-rpc's TCP transport.
#[cfg(feature = "tcp")]
pub(crate) const RUST_RPC_ALPN: &[u8] = b"rust-rpc";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            detail: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: "private key",
        detail: e.to_string(),
    })
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "CA certificates")? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A server's TLS identity, and whom it accepts as clients.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Presents `cert_chain` (PEM, leaf first) with its `private_key` (PEM: PKCS#8, PKCS#1 or
    /// SEC1); clients need no certificate. Fails on PEM without a certificate or key, and on a
    /// key rustls cannot use.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<ServerTls, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                certificates(cert_chain, "certificate chain")?,
                self::private_key(private_key)?,
            )?;
        Ok(Self::from_config(Arc::new(config)))
    }

    /// Like [`from_pem`](ServerTls::from_pem), and requires every client to present a
    /// certificate issued by a CA in `client_ca` (PEM): mutual TLS.
    pub fn with_client_ca(
        cert_chain: &[u8],
        private_key: &[u8],
        client_ca: &[u8],
    ) -> Result<ServerTls, TlsError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca)?), provider())
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                certificates(cert_chain, "certificate chain")?,
                self::private_key(private_key)?,
            )?;
        Ok(Self::from_config(Arc::new(config)))
    }

    /// Uses a rustls configuration as it is; if it offers no ALPN protocol, each transport
    /// adds its own (`h2` for gRPC, `rust-rpc` for TCP).
    pub fn from_config(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls { config }
    }

    /// The acceptor for a transport whose ALPN protocol is `alpn`, made once per server.
    pub(crate) fn acceptor_for(&self, alpn: &[u8]) -> tokio_rustls::TlsAcceptor {
        let config = with_alpn(&self.config, &self.config.alpn_protocols, alpn, |c, p| {
            c.alpn_protocols = p
        });
        tokio_rustls::TlsAcceptor::from(config)
    }
}

/// `config`, offering `alpn` if it offers no protocol of its own (`offered`); copied only then.
fn with_alpn<C: Clone>(
    config: &Arc<C>,
    offered: &[Vec<u8>],
    alpn: &[u8],
    set: impl FnOnce(&mut C, Vec<Vec<u8>>),
) -> Arc<C> {
    if !offered.is_empty() {
        return config.clone();
    }
    let mut copy = (**config).clone();
    set(&mut copy, vec![alpn.to_vec()]);
    Arc::new(copy)
}

/// Whom a client trusts, what it presents, and the name it expects the server to prove.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the CAs in `ca` (PEM); presents no certificate.
    pub fn with_ca_pem(ca: &[u8]) -> Result<ClientTls, TlsError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots(ca)?)
            .with_no_client_auth();
        Ok(Self::from_config(Arc::new(config)))
    }

    /// Trusts the CAs in `ca` and presents `cert_chain` with `private_key` (all PEM), for a
    /// server that requires client certificates (mutual TLS).
    pub fn with_identity(
        ca: &[u8],
        cert_chain: &[u8],
        private_key: &[u8],
    ) -> Result<ClientTls, TlsError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots(ca)?)
            .with_client_auth_cert(
                certificates(cert_chain, "certificate chain")?,
                self::private_key(private_key)?,
            )?;
        Ok(Self::from_config(Arc::new(config)))
    }

    /// Uses a rustls configuration as it is; if it offers no ALPN protocol, each transport
    /// adds its own (`h2` for gRPC, `rust-rpc` for TCP).
    pub fn from_config(config: Arc<ClientConfig>) -> ClientTls {
        ClientTls {
            config,
            server_name: None,
        }
    }

    /// Expects the server's certificate to name `name` instead of the target's host (gRPC's
    /// `--server_host_override`).
    pub fn server_name(mut self, name: impl Into<String>) -> ClientTls {
        self.server_name = Some(name.into());
        self
    }

    /// This configuration for a transport whose ALPN protocol is `alpn`: taken once, when a
    /// channel builder is given it.
    pub(crate) fn for_transport(self, alpn: &[u8]) -> ClientTls {
        let config = with_alpn(&self.config, &self.config.alpn_protocols, alpn, |c, p| {
            c.alpn_protocols = p
        });
        ClientTls { config, ..self }
    }

    /// The connector, and the name to verify for a connection to `target` (`host:port`).
    pub(crate) fn connector(
        &self,
        target: &str,
    ) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), TlsError> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => host_of(target).to_owned(),
        };
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name))?;
        Ok((
            tokio_rustls::TlsConnector::from(self.config.clone()),
            server_name,
        ))
    }
}

/// The host of `host:port`, without an IPv6 address's brackets.
fn host_of(target: &str) -> &str {
    let host = match target.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => target,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_targets() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("example.com"), "example.com");
    }

    #[test]
    fn bad_pem_is_an_error_that_names_the_input() {
        let err = ServerTls::from_pem(b"not pem", b"").unwrap_err();
        assert!(err.to_string().starts_with("certificate chain"), "{err}");
        let err = ClientTls::with_ca_pem(b"").unwrap_err();
        assert!(err.to_string().starts_with("CA certificates"), "{err}");
    }
}
