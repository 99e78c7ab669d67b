//! Backends: libvirt (kvm, qemu, xen) and liblxc (lxc).

pub mod libvirt;
pub mod lxc;
