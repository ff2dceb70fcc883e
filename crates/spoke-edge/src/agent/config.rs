//! The agent's settings: restart tuning ([`RestartConfig`]) and what it says about itself in
//! reported properties (edge contracts spec §3.1 agent environment settings, §5.1).

use time::OffsetDateTime;

use super::restart::RestartConfig;

/// This build's version (`CARGO_PKG_VERSION`).
const PACKAGE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The host, as reported in `runtime.platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `os`, such as `linux`.
    pub os: String,
    /// `architecture`, such as `x86_64` or `aarch64`.
    pub architecture: String,
    /// `version`: the runtime's version.
    pub version: String,
}

impl Platform {
    /// The host this binary was built for, with this build's version.
    pub fn host() -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            version: PACKAGE_VERSION.to_owned(),
        }
    }
}

/// The agent's own version, as reported in `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentVersion {
    /// `version`, such as `0.1.0`.
    pub version: String,
    /// `build`: a build identifier, empty when unknown.
    pub build: String,
    /// `commit`: the source commit, empty when unknown.
    pub commit: String,
}

impl AgentVersion {
    /// This build's package version, with no build or commit.
    pub fn package() -> Self {
        Self {
            version: PACKAGE_VERSION.to_owned(),
            build: String::new(),
            commit: String::new(),
        }
    }
}

/// Everything the agent needs besides its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Restart policy tuning.
    pub restart: RestartConfig,
    /// `runtime.type`: the module runtime's kind, `docker` or `process`
    /// ([`crate::runtime::ModuleRuntime::kind`]).
    pub runtime_type: String,
    /// `runtime.platform`.
    pub platform: Platform,
    /// `version`.
    pub version: AgentVersion,
    /// When the agent (and the built-in edge hub) started: their `lastStartTimeUtc`.
    pub started_at: OffsetDateTime,
}

impl AgentConfig {
    /// Default restart tuning, this host and build, for `runtime_type`.
    pub fn new(runtime_type: &str, started_at: OffsetDateTime) -> Self {
        Self {
            restart: RestartConfig::default(),
            runtime_type: runtime_type.to_owned(),
            platform: Platform::host(),
            version: AgentVersion::package(),
            started_at,
        }
    }
}
