//! The CLI's integration tests, one binary: the real `sendblue-webhooks` binary against a fake
//! of Sendblue's management API and receivers on loopback.

mod doctor;
mod readme;
mod reconcile;
mod register;
mod send;
mod support;
