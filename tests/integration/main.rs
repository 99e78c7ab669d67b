//! One integration-test crate: every test runs the real `creature` binary.
//! Tests under `real/` drive real backends and run inside the namespace
//! `scripts/ns-run` creates (scripts/test does it).

mod util;

mod autostart;
mod cli;
mod completion;
mod domain_xml;
mod fuzz;
mod generated;
mod http;
mod images;
mod matrix;
mod names;
mod net;
mod real;
mod refusal;
mod seed;
mod state;
mod templates;
mod volumes;
mod wizard;
