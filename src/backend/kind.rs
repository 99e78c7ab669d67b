//! The four backends creature drives, and the Nova column each is judged by.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Kvm,
    Qemu,
    Lxc,
    Xen,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::Kvm, Backend::Qemu, Backend::Lxc, Backend::Xen];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Kvm => "kvm",
            Backend::Qemu => "qemu",
            Backend::Lxc => "lxc",
            Backend::Xen => "xen",
        }
    }

    /// The Nova column this backend is mapped to.
    pub fn nova_column(self) -> &'static str {
        match self {
            Backend::Kvm => "Libvirt KVM (x86)",
            Backend::Qemu => "Libvirt QEMU (x86)",
            Backend::Lxc => "Libvirt LXC",
            Backend::Xen => "Libvirt Xen",
        }
    }

    pub fn parse(s: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
