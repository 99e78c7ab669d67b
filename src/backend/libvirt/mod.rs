//! libvirt: connections and error mapping shared by machines and networks.

mod conn;
pub mod create;
pub mod domain_xml;
pub mod machine;
pub mod network;
pub mod stats;
pub mod storage;

pub use conn::{map_error, open, quiet_errors, Uri};
