//! JSON bodies of the workload API (azure-iot-edge-contracts.md §1.2). Requests ignore fields
//! they do not name (the Python SDK sends `keyId` and `algo` with `sign`, and Azure ignores
//! them too).

use serde::{Deserialize, Serialize};

/// `POST /modules/{m}/genid/{g}/sign`. Only `data` is read, as in Azure.
#[derive(Debug, Deserialize)]
pub(crate) struct SignRequest {
    /// Base64 of the bytes to sign.
    pub data: String,
}

/// Reply to `sign`.
#[derive(Debug, Serialize)]
pub(crate) struct SignResponse {
    /// Base64 of the HMAC-SHA256 digest.
    pub digest: String,
}

/// `POST /modules/{m}/genid/{g}/encrypt`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncryptRequest {
    /// Base64 of the data to encrypt.
    pub plaintext: String,
    /// Base64 of the caller's initialization vector.
    pub initialization_vector: String,
}

/// Reply to `encrypt`.
#[derive(Debug, Serialize)]
pub(crate) struct EncryptResponse {
    /// Base64 of the sealed data.
    pub ciphertext: String,
}

/// `POST /modules/{m}/genid/{g}/decrypt`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DecryptRequest {
    /// Base64 of data from `encrypt`.
    pub ciphertext: String,
    /// Base64 of the initialization vector given to `encrypt`.
    pub initialization_vector: String,
}

/// Reply to `decrypt`.
#[derive(Debug, Serialize)]
pub(crate) struct DecryptResponse {
    /// Base64 of the original data.
    pub plaintext: String,
}

/// `POST /modules/{m}/genid/{g}/certificate/server`. `expiration` is accepted and ignored,
/// as in Azure.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerCertRequest {
    /// The host name (or IP address) the certificate is for.
    pub common_name: String,
}

/// `GET /trust-bundle` and `GET /manifest-trust-bundle`: PEM text, not base64 (§0 gotcha 1).
#[derive(Debug, Serialize)]
pub(crate) struct TrustBundleResponse {
    /// The PEM bundle.
    pub certificate: String,
}

/// The private key of a [`CertificateResponse`].
#[derive(Debug, Serialize)]
pub(crate) struct PrivateKey {
    /// Always `"key"`: the key itself, not a reference to one.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The PKCS#8 PEM key.
    pub bytes: String,
}

/// Reply (201) to the certificate endpoints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CertificateResponse {
    /// The new key.
    pub private_key: PrivateKey,
    /// PEM chain: the new certificate, then the edge CA's.
    pub certificate: String,
    /// Expiry, RFC 3339 with a numeric offset (`2026-11-19T10:00:00+00:00`).
    pub expiration: String,
}

/// Every error reply.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorResponse {
    /// What went wrong.
    pub message: String,
}
