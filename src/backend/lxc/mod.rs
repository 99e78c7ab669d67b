//! System containers through liblxc. Only `sys` touches FFI.

pub mod config;
pub mod create;
pub mod debootstrap;
pub mod driver;
pub mod idmap;
pub mod rootfs;
pub mod sys;
