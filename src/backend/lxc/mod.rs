//! liblxc, through `lxc-sys`. Only `sys` touches FFI.

pub mod sys;
