//! The text, Actions outputs and step summary of each report.

pub mod build;
pub mod deploy;
pub mod release;
pub mod supply;
mod tag;
