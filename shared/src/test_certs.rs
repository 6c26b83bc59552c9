//! Certificates for tests and benchmarks (feature `test-certs`): a private CA and server
//! certificates for `127.0.0.1` and `localhost` signed by it, made with rcgen. Used by the
//! server's TLS tests, the client's WSS test and `ladder --tls`.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType, date_time_ymd,
};

/// A private certificate authority.
pub struct TestCa {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate and its key, PEM, and the certificate's DER.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// A CA named `name` (distinct names matter: a leaf whose issuer equals its own subject looks
/// self-signed to some clients).
pub fn ca(name: &str) -> Result<TestCa, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key)?;
    Ok(TestCa { cert, key })
}

/// A certificate for `127.0.0.1` and `localhost` named `cn`, signed by `ca`; `expired` puts
/// its validity in 2020.
pub fn server_cert(ca: &TestCa, cn: &str, expired: bool) -> Result<ServerCert, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params.distinguished_name.push(DnType::CommonName, cn);
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.cert, &ca.key)?;
    Ok(ServerCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    })
}
