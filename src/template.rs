//! Templates (TOML) machines are created from. The full template system
//! arrives with its own issue; today this knows the names of the shipped
//! templates, so completion and the create path can name them.

/// Templates shipped in templates/, embedded in the binary.
pub const SHIPPED: &[&str] = &[
    "debian-12",
    "lxc-busybox",
    "lxc-debian",
    "tiny",
    "tiny-kvm",
    "tiny-xen",
];

pub fn names() -> Vec<String> {
    SHIPPED.iter().map(|s| s.to_string()).collect()
}
