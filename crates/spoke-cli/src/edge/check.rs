//! `spoke edge check`: local checks of an edge device, in the spirit of `iotedge check`
//! (azure-iot-edge-contracts.md §9): the configuration, the management socket, the hub
//! (TCP, then TLS trusting `trust_bundle_cert`), the container engine, the edge CA's expiry
//! and the clock against the hub's. Each check passes, warns, fails or is skipped when an
//! earlier one makes it meaningless; warnings and failures carry a hint. The exit code is 1
//! when any check failed and 0 with warnings only (iotedge's rule).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use spoke_core::connstr::ConnectionString;
use spoke_edge::config::{EdgeConfig, RuntimeKind, file_uri_path};
use spoke_edge::management::management_socket;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::net::TcpStream;

use super::client::{ManagementClient, tls_config};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TLS handshake or an HTTP exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock difference to the hub above which the clock check warns.
const MAX_SKEW: time::Duration = time::Duration::seconds(60);
/// Remaining lifetime of the edge CA below which its check warns.
const CA_WARN_BEFORE: time::Duration = time::Duration::days(7);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All good.
    Pass,
    /// Works, but needs attention.
    Warn,
    /// Broken.
    Fail,
    /// Not run: an earlier check failed, or it does not apply.
    Skip,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short id, like iotedge's check ids.
    pub name: &'static str,
    /// How it came out.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about a warning or a failure.
    pub hint: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
            hint: None,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Skip,
            ..Self::pass(name, detail)
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Warn,
            hint: Some(hint.into()),
            ..Self::pass(name, detail)
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Fail,
            hint: Some(hint.into()),
            ..Self::pass(name, detail)
        }
    }

    /// The check as printed: a status tag, the id and the detail, then an indented hint.
    pub fn format(&self) -> String {
        let tag = match self.outcome {
            Outcome::Pass => "[ ok ]",
            Outcome::Warn => "[warn]",
            Outcome::Fail => "[FAIL]",
            Outcome::Skip => "[skip]",
        };
        let mut line = format!("{tag} {}: {}", self.name, self.detail);
        if let Some(hint) = &self.hint {
            line.push_str("\n       hint: ");
            line.push_str(hint);
        }
        line
    }
}

/// The summary line after the checks.
pub fn summary(checks: &[Check]) -> String {
    let count = |outcome| checks.iter().filter(|c| c.outcome == outcome).count();
    format!(
        "{} ok, {} warning(s), {} error(s), {} skipped",
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail),
        count(Outcome::Skip)
    )
}

/// Whether `spoke edge check` succeeds: no check failed (warnings are fine).
pub fn succeeded(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.outcome != Outcome::Fail)
}

/// Runs every check for the configuration at `config_path`; `socket` overrides the
/// management socket's path. Never fails: problems are failed checks.
pub async fn run_checks(
    config_path: &Path,
    socket: Option<&Path>,
    now: OffsetDateTime,
) -> Vec<Check> {
    let config = match EdgeConfig::load(config_path) {
        Ok(config) => config,
        Err(err) => {
            return vec![Check::fail(
                "config",
                format!("{err:#}"),
                "fix the file (the message names the key), or pass --config FILE",
            )];
        }
    };
    let mut checks = vec![Check::pass(
        "config",
        format!("{} is valid", config_path.display()),
    )];
    let socket = socket.map_or_else(|| management_socket(&config), Path::to_owned);
    checks.push(check_socket(&socket).await);
    let host = ConnectionString::parse(&config.provisioning.connection_string)
        .map(|cs| cs.host_name().to_owned())
        .unwrap_or_default();
    let ports = [
        ("MQTT", config.upstream.mqtt_port),
        ("HTTPS", config.upstream.https_port),
    ];
    let (reachability, reachable) = check_reachable(&host, &ports).await;
    checks.push(reachability);
    let (trust, roots) = check_tls(&config, &host, &reachable).await;
    checks.push(trust);
    checks.push(check_engine(&config).await);
    checks.push(check_edge_ca(&config, now));
    let https = reachable.iter().find(|(name, _)| *name == "HTTPS");
    checks.push(match (roots, https) {
        (Some(roots), Some(&(_, port))) => check_clock(&host, port, roots).await,
        _ => Check::skip(
            "clock-skew",
            "needs a TLS connection to the hub's HTTPS port",
        ),
    });
    checks
}

async fn check_socket(socket: &Path) -> Check {
    let status = match ManagementClient::new(socket) {
        Ok(client) => client.status().await,
        Err(err) => Err(err),
    };
    match status {
        Ok(status) => Check::pass(
            "management-socket",
            format!(
                "spoke-edge {} answers on {} (up {} s)",
                status.version,
                socket.display(),
                status.uptime_secs
            ),
        ),
        Err(err) => Check::fail(
            "management-socket",
            format!("{err:#}"),
            "start spoke-edge (e.g. `systemctl start spoke-edge`), or pass --socket PATH",
        ),
    }
}

/// TCP connections to the hub's ports; returns the ports that accepted one.
async fn check_reachable(
    host: &str,
    ports: &[(&'static str, u16)],
) -> (Check, Vec<(&'static str, u16)>) {
    let mut reachable = Vec::new();
    let mut errors = Vec::new();
    for &(name, port) in ports {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => reachable.push((name, port)),
            Ok(Err(err)) => errors.push(format!("{host}:{port} ({name}): {err}")),
            Err(_) => errors.push(format!("{host}:{port} ({name}): timed out")),
        }
    }
    let check = if errors.is_empty() {
        let list: Vec<String> = ports.iter().map(|(n, p)| format!("{p} ({n})")).collect();
        Check::pass(
            "hub-reachable",
            format!("{host} accepts connections on {}", list.join(" and ")),
        )
    } else {
        Check::fail(
            "hub-reachable",
            format!("cannot connect to {}", errors.join("; ")),
            "check the network, DNS and firewall toward the hub; [upstream] mqtt_port and \
             https_port name non-standard ports",
        )
    };
    (check, reachable)
}

/// TLS handshakes on the reachable ports, trusting `trust_bundle_cert` only (as the daemon
/// does); returns the trust roots when every handshake succeeded.
async fn check_tls(
    config: &EdgeConfig,
    host: &str,
    reachable: &[(&'static str, u16)],
) -> (Check, Option<RootCertStore>) {
    const NAME: &str = "hub-tls";
    let hint = "set trust_bundle_cert to the CA that signed the hub's certificate (spoke-hub's \
                DIR/ca.pem); the certificate must name the connection string's HostName";
    if reachable.is_empty() {
        return (Check::skip(NAME, "the hub is not reachable"), None);
    }
    let roots = match trust_roots(config) {
        Ok(roots) => roots,
        Err(detail) => return (Check::fail(NAME, detail, hint), None),
    };
    let tls = match tls_config(roots.clone()) {
        Ok(tls) => tls,
        Err(err) => return (Check::fail(NAME, format!("{err:#}"), hint), None),
    };
    let Ok(server_name) = ServerName::try_from(host.to_owned()) else {
        return (
            Check::fail(
                NAME,
                format!("{host:?} is not a valid TLS server name"),
                hint,
            ),
            None,
        );
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let mut errors = Vec::new();
    for &(name, port) in reachable {
        let handshake = async {
            let tcp = TcpStream::connect((host, port)).await?;
            connector.connect(server_name.clone(), tcp).await
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, handshake).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => errors.push(format!("{host}:{port} ({name}): {err}")),
            Err(_) => errors.push(format!("{host}:{port} ({name}): handshake timed out")),
        }
    }
    if errors.is_empty() {
        let check = Check::pass(
            NAME,
            format!(
                "the hub's certificate is trusted through {}",
                trust_path(config)
            ),
        );
        (check, Some(roots))
    } else {
        let detail = format!("TLS handshake failed: {}", errors.join("; "));
        (Check::fail(NAME, detail, hint), None)
    }
}

fn trust_path(config: &EdgeConfig) -> String {
    config.trust_bundle_cert.clone().unwrap_or_default()
}

fn trust_roots(config: &EdgeConfig) -> Result<RootCertStore, String> {
    let uri = config
        .trust_bundle_cert
        .as_deref()
        .ok_or("trust_bundle_cert is not set, so spoke-edge cannot verify the hub")?;
    let path = file_uri_path(uri)?;
    let pem = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("invalid PEM in {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(roots)
}

/// `GET /_ping` on the Docker Engine, when modules run in containers.
async fn check_engine(config: &EdgeConfig) -> Check {
    const NAME: &str = "container-engine";
    if config.runtime.kind == RuntimeKind::Process {
        return Check::skip(
            NAME,
            "[runtime] kind = \"process\": no container engine is used",
        );
    }
    let uri = &config.moby_runtime.uri;
    let hint = "start Docker (e.g. `systemctl start docker`), fix [moby_runtime] uri, or set \
                [runtime] kind = \"process\"";
    let ping = async {
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(RootCertStore::empty())?)
            .timeout(EXCHANGE_TIMEOUT);
        let (builder, url) = if let Some(path) = uri.strip_prefix("unix://") {
            (
                builder.unix_socket(path),
                "http://localhost/_ping".to_owned(),
            )
        } else {
            let authority = uri
                .strip_prefix("tcp://")
                .or_else(|| uri.strip_prefix("http://"));
            let Some(authority) = authority else {
                anyhow::bail!("unsupported URI scheme (use unix:// or tcp://)");
            };
            (builder, format!("http://{authority}/_ping"))
        };
        let response = builder.build()?.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "answered {}",
            response.status()
        );
        Ok(())
    };
    match ping.await {
        Ok(()) => Check::pass(NAME, format!("Docker Engine answers at {uri}")),
        Err(err) => Check::fail(NAME, format!("Docker Engine at {uri}: {err:#}"), hint),
    }
}

/// The edge CA certificate: the configured one, or the generated quickstart CA.
fn check_edge_ca(config: &EdgeConfig, now: OffsetDateTime) -> Check {
    const NAME: &str = "edge-ca-expiry";
    let (path, generated) = match &config.edge_ca {
        Some(files) => match file_uri_path(&files.cert) {
            Ok(path) => (path, false),
            Err(detail) => return Check::fail(NAME, detail, "fix [edge_ca] cert"),
        },
        None => (config.data_dir.join("edge-ca").join("ca.pem"), true),
    };
    let pem = match std::fs::read_to_string(&path) {
        Ok(pem) => pem,
        Err(err) if generated && err.kind() == std::io::ErrorKind::NotFound => {
            return Check::warn(
                NAME,
                format!("{} does not exist yet", path.display()),
                "spoke-edge generates the quickstart edge CA when it first starts",
            );
        }
        Err(err) => {
            return Check::fail(
                NAME,
                format!("cannot read {}: {err}", path.display()),
                "fix [edge_ca] cert, or remove [edge_ca] to use a generated CA",
            );
        }
    };
    match spoke_edge::edge_ca::not_after(&pem) {
        Some(not_after) => ca_expiry(&path, not_after, now, generated),
        None => Check::fail(
            NAME,
            format!("{} is not a PEM certificate", path.display()),
            "replace the edge CA certificate",
        ),
    }
}

/// Expired fails, under [`CA_WARN_BEFORE`] left warns.
pub fn ca_expiry(
    path: &Path,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
    generated: bool,
) -> Check {
    const NAME: &str = "edge-ca-expiry";
    let left = not_after - now;
    let renew = if generated {
        "restart spoke-edge: it renews the quickstart CA when it is within 7 days of expiry"
    } else {
        "renew the certificate named by [edge_ca] cert and restart spoke-edge"
    };
    let at = spoke_edge::management::wire::rfc3339(not_after);
    let path = PathBuf::from(path);
    if left <= time::Duration::ZERO {
        Check::fail(NAME, format!("{} expired at {at}", path.display()), renew)
    } else if left < CA_WARN_BEFORE {
        let detail = format!(
            "{} expires at {at}, in {} hours",
            path.display(),
            left.whole_hours()
        );
        Check::warn(NAME, detail, renew)
    } else {
        let detail = format!(
            "{} is valid until {at} ({} days)",
            path.display(),
            left.whole_days()
        );
        Check::pass(NAME, detail)
    }
}

/// Compares the `Date` of an HTTPS answer from the hub with the local clock.
async fn check_clock(host: &str, port: u16, roots: RootCertStore) -> Check {
    const NAME: &str = "clock-skew";
    let date = async {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(roots)?)
            .timeout(EXCHANGE_TIMEOUT)
            .build()?;
        let response = client.get(format!("https://{host}:{port}/")).send().await?;
        let header = response.headers().get(reqwest::header::DATE);
        let text = header.and_then(|v| v.to_str().ok()).unwrap_or_default();
        parse_http_date(text).ok_or_else(|| anyhow::anyhow!("no valid Date header ({text:?})"))
    };
    match date.await {
        Ok(hub_time) => clock_skew(hub_time, OffsetDateTime::now_utc()),
        Err(err) => Check::warn(
            NAME,
            format!("cannot read the hub's clock: {err:#}"),
            "compare the device clock with the hub's by hand; SAS tokens and certificates \
             depend on it",
        ),
    }
}

/// Warns when `local` differs from `hub` by more than [`MAX_SKEW`].
pub fn clock_skew(hub: OffsetDateTime, local: OffsetDateTime) -> Check {
    const NAME: &str = "clock-skew";
    let skew = (local - hub).abs();
    if skew > MAX_SKEW {
        Check::warn(
            NAME,
            format!(
                "the local clock is {} s away from the hub's",
                skew.whole_seconds()
            ),
            "synchronize the clock (NTP); SAS tokens and certificate checks depend on it",
        )
    } else {
        Check::pass(
            NAME,
            format!("within {} s of the hub's clock", skew.whole_seconds()),
        )
    }
}

/// An HTTP `Date` value in the IMF-fixdate form every current server sends (RFC 9110 §5.6.7),
/// e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use spoke_core::pki::CertificateAuthority;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

    fn outcome(checks: &[Check], name: &str) -> Outcome {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {checks:?}"))
            .outcome
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    fn write_config(dir: &Path, extra: &str) -> PathBuf {
        let text = format!(
            "hostname = \"edge1\"\ndata_dir = \"{}\"\n{extra}\n[upstream]\nmqtt_port = {}\n\
             https_port = {}\n[provisioning]\nsource = \"manual\"\nconnection_string = \
             \"HostName=127.0.0.1;DeviceId=edge1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxA=\"\n",
            dir.display(),
            closed_port(),
            closed_port()
        );
        let path = dir.join("config.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    #[tokio::test]
    async fn an_unreachable_hub_and_no_daemon_fail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_config(dir.path(), "[runtime]\nkind = \"process\"");
        let checks = run_checks(&config, None, NOW).await;
        let outcomes: Vec<(&str, Outcome)> = checks.iter().map(|c| (c.name, c.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("config", Outcome::Pass),
                ("management-socket", Outcome::Fail),
                ("hub-reachable", Outcome::Fail),
                ("hub-tls", Outcome::Skip),
                ("container-engine", Outcome::Skip),
                ("edge-ca-expiry", Outcome::Warn),
                ("clock-skew", Outcome::Skip),
            ]
        );
        assert!(!succeeded(&checks));
        let report: Vec<String> = checks.iter().map(Check::format).collect();
        let report = report.join("\n");
        assert!(
            report.contains("[FAIL] hub-reachable: cannot connect to 127.0.0.1:"),
            "{report}"
        );
        assert!(report.contains("mgmt.sock"), "{report}");
        assert!(
            checks
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Warn))
                .all(|c| c.hint.is_some())
        );
    }

    #[tokio::test]
    async fn a_missing_docker_engine_and_an_expired_ca_fail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = dir.path().join("docker.sock");
        let config = write_config(
            dir.path(),
            &format!("[moby_runtime]\nuri = \"unix://{}\"", engine.display()),
        );
        let ca = CertificateAuthority::generate(
            "old",
            NOW - time::Duration::days(100),
            time::Duration::days(90),
        )
        .expect("CA");
        std::fs::create_dir_all(dir.path().join("edge-ca")).expect("dir");
        std::fs::write(dir.path().join("edge-ca/ca.pem"), ca.cert_pem).expect("ca");
        let checks = run_checks(&config, None, NOW).await;
        assert_eq!(outcome(&checks, "container-engine"), Outcome::Fail);
        assert_eq!(outcome(&checks, "edge-ca-expiry"), Outcome::Fail);
    }

    #[tokio::test]
    async fn a_bad_config_is_one_failure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "hostnme = 1\n").expect("config");
        let checks = run_checks(&path, None, NOW).await;
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].outcome, Outcome::Fail);
        assert!(checks[0].detail.contains("hostnme"), "{}", checks[0].detail);
        let missing = run_checks(&dir.path().join("nope.toml"), None, NOW).await;
        assert_eq!(missing[0].outcome, Outcome::Fail);
    }

    #[test]
    fn ca_expiry_thresholds() {
        let path = Path::new("/ca.pem");
        let day = time::Duration::days(1);
        assert_eq!(ca_expiry(path, NOW - day, NOW, true).outcome, Outcome::Fail);
        assert_eq!(
            ca_expiry(path, NOW + 3 * day, NOW, false).outcome,
            Outcome::Warn
        );
        assert_eq!(
            ca_expiry(path, NOW + 30 * day, NOW, true).outcome,
            Outcome::Pass
        );
    }

    #[test]
    fn clock_skew_warns_past_a_minute() {
        let hub = NOW;
        assert_eq!(
            clock_skew(hub, NOW + time::Duration::seconds(30)).outcome,
            Outcome::Pass
        );
        assert_eq!(
            clock_skew(hub, NOW - time::Duration::seconds(90)).outcome,
            Outcome::Warn
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(datetime!(1994-11-06 08:49:37 UTC))
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn formatting_and_exit_rule() {
        let checks = [
            Check::pass("config", "ok"),
            Check::warn("clock-skew", "90 s off", "use NTP"),
        ];
        assert_eq!(
            checks[1].format(),
            "[warn] clock-skew: 90 s off\n       hint: use NTP"
        );
        assert!(succeeded(&checks), "warnings alone succeed");
        assert_eq!(
            summary(&checks),
            "1 ok, 1 warning(s), 0 error(s), 0 skipped"
        );
        assert!(!succeeded(&[Check::fail("x", "broken", "fix it")]));
    }
}
