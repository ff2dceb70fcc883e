//! The one error type of every runtime trait. Variants the agent acts on (not found, already
//! exists, missing image or program, bad settings) are distinct; engine and I/O failures carry
//! their cause as a source, never an HTTP type in the signature.

use std::io;

use spoke_core::ids::ModuleId;

/// A boxed engine error (the Docker client's, for instance), kept opaque.
pub type EngineSource = Box<dyn std::error::Error + Send + Sync>;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No module of that name exists in this runtime.
    #[error("module {name} does not exist")]
    NotFound {
        /// The module asked for.
        name: ModuleId,
    },
    /// `create` of a module that already exists (remove it first).
    #[error("module {name} already exists")]
    AlreadyExists {
        /// The module.
        name: ModuleId,
    },
    /// The image is not present on this device (pull it first).
    #[error("image {image} is not present")]
    ImageNotFound {
        /// The image reference.
        image: String,
    },
    /// Pulling an image failed.
    #[error("pulling image {image} failed: {message}")]
    ImagePull {
        /// The image reference.
        image: String,
        /// What the engine said.
        message: String,
    },
    /// A process module's program does not exist or is not executable.
    #[error("program {program:?} of module {name} was not found or is not executable")]
    CommandNotFound {
        /// The module.
        name: ModuleId,
        /// The program as configured.
        program: String,
    },
    /// The module's settings cannot be run by this runtime.
    #[error("module {name} cannot be run by the {runtime} runtime: {reason}")]
    InvalidConfig {
        /// The module.
        name: ModuleId,
        /// `docker` or `process`.
        runtime: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `createOptions` is not a Docker `ContainerCreate` object.
    #[error("createOptions of module {name} are not a valid Docker ContainerCreate object")]
    InvalidCreateOptions {
        /// The module.
        name: ModuleId,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// Starting a process module's program failed for a reason other than it being missing.
    #[error("starting the program of module {name} failed")]
    Spawn {
        /// The module.
        name: ModuleId,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A stopped module did not exit even after SIGKILL.
    #[error("module {name} did not exit after being killed")]
    StopTimedOut {
        /// The module.
        name: ModuleId,
    },
    /// A file operation of the runtime's own state failed.
    #[error("{operation} failed")]
    Io {
        /// What was being done, with the path.
        operation: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The container engine cannot be reached.
    #[error("container engine at {endpoint} is unavailable")]
    Unavailable {
        /// The socket path.
        endpoint: String,
        /// The connection error.
        #[source]
        source: EngineSource,
    },
    /// The container engine refused or failed a request.
    #[error("container engine request {operation} failed")]
    Engine {
        /// The request, e.g. `create container`.
        operation: &'static str,
        /// The engine's error.
        #[source]
        source: EngineSource,
    },
}

impl RuntimeError {
    /// An [`RuntimeError::Io`] for `operation` on `path`.
    pub(crate) fn io(operation: &str, path: &std::path::Path, source: io::Error) -> Self {
        Self::Io {
            operation: format!("{operation} {}", path.display()),
            source,
        }
    }
}
