//! Sync: the protocol's messages ([`wire`]), the device's side of it as pure state
//! transitions ([`engine`]), and the HTTP transport that carries them ([`http`]); the
//! enrollment link of a QR code ([`link`]).

pub mod engine;
pub mod http;
pub mod link;
pub mod wire;
