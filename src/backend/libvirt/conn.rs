use std::time::Duration;

use virt::connect::Connect;
use virt::error::ErrorNumber;

use crate::backend::Backend;
use crate::deadline;
use crate::error::{Error, Kind, Result};

/// A libvirt connection URI for one backend on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri(pub String);

impl Uri {
    /// The local system URI of a libvirt-driven backend.
    pub fn local(backend: Backend) -> Option<Uri> {
        match backend {
            Backend::Kvm | Backend::Qemu => Some(Uri("qemu:///system".into())),
            Backend::Xen => Some(Uri("xen:///system".into())),
            Backend::Lxc => None,
        }
    }
}

/// libvirt prints every error to stderr by default; creature reports errors
/// itself, once, with an exit code.
pub fn quiet_errors() {
    virt::error::clear_error_callback();
}

/// Map a libvirt error to creature's kinds, keeping libvirt's message.
pub fn map_error(what: impl Into<String>, e: virt::error::Error) -> Error {
    let kind = match e.code() {
        virt::error::ErrorNumberEnum::Known(n) => match n {
            ErrorNumber::NoDomain
            | ErrorNumber::NoNetwork
            | ErrorNumber::NoStoragePool
            | ErrorNumber::NoStorageVolume
            | ErrorNumber::NoNwfilter
            | ErrorNumber::NoNwfilterBinding => Kind::NotFound,
            ErrorNumber::OperationInvalid | ErrorNumber::DomExist => Kind::Conflict,
            ErrorNumber::NoConnect
            | ErrorNumber::AuthFailed
            | ErrorNumber::AuthCancelled
            | ErrorNumber::AuthUnavailable
            | ErrorNumber::NoSupport
            | ErrorNumber::Rpc => Kind::Unavailable,
            ErrorNumber::OperationTimeout | ErrorNumber::AgentUnresponsive => Kind::Timeout,
            ErrorNumber::XmlError | ErrorNumber::XmlDetail | ErrorNumber::InvalidArg => {
                Kind::Invalid
            }
            _ => Kind::Other,
        },
        _ => Kind::Other,
    };
    Error::new(kind, what).caused_by(e.message())
}

/// Open a connection, giving up after `limit` so a wedged daemon cannot hang
/// the command.
pub fn open(uri: &Uri, limit: Duration) -> Result<Connect> {
    crate::trace::call(
        || format!("libvirt: connect {}", uri.0),
        || open_now(uri, limit),
    )
}

fn open_now(uri: &Uri, limit: Duration) -> Result<Connect> {
    let u = uri.0.clone();
    deadline::run(&format!("libvirt at {}", uri.0), limit, move || {
        Connect::open(Some(&u)).map_err(|e| {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let unprivileged = unsafe { libc::geteuid() } != 0;
            let denied = e.message().contains("Permission denied")
                || e.message().contains("authentication")
                || e.message().contains("not authorized")
                || (unprivileged && u.ends_with("/system"));
            let what = if denied {
                format!("cannot connect to libvirt at {u}: permission denied (run as root or as a member of the libvirt group)")
            } else {
                format!("cannot connect to libvirt at {u}")
            };
            let mut err = map_error(what, e);
            if err.kind() == Kind::Other {
                err = Error::new(Kind::Unavailable, err.message().to_string())
                    .caused_by(err.causes().join("; "));
            }
            err
        })
    })
    .map_err(|e| match e.kind() {
        Kind::Timeout => Error::unavailable(e.message().to_string()),
        _ => e,
    })
}
