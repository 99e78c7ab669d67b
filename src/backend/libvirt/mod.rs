//! libvirt: connections and error mapping shared by machines and networks.

mod conn;
pub mod storage;

pub use conn::{map_error, open, quiet_errors, Uri};
