//! libvirt: connections and error mapping shared by machines and networks.

pub mod agent;
mod blockjob;
mod conn;
pub mod create;
pub mod domain_xml;
pub mod fc;
pub mod fc_xml;
pub mod iotune;
pub mod iscsi;
pub mod iscsi_xml;
pub mod machine;
pub mod migrate;
pub mod migrate_xml;
pub mod network;
pub mod network_xml;
pub mod nwfilter;
pub mod rescue_xml;
pub mod reserve;
pub mod ship;
mod snapshot;
pub mod snapshot_xml;
pub mod stats;
pub mod storage;
pub mod volume;
pub mod volume_xml;

pub use conn::{map_error, open, quiet_errors, Uri};
