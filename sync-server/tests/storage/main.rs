//! The server's storage on both backends: one conformance suite that runs against SQLite
//! and PostgreSQL (`conformance`), and two server nodes on one PostgreSQL database with
//! devices pushing to both at once (`nodes`). PostgreSQL runs in a throwaway cluster that
//! the tests start themselves (`pg`).

#![allow(clippy::unwrap_used, clippy::panic)]

mod conformance;
mod nodes;
mod pg;
